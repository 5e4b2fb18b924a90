#include "geometry.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>

#include "host_error.h"

namespace {

constexpr double kLongestSeconds = 600;  // longer is far more likely a count of samples than of seconds

std::string format(double value, int decimals) {
  std::ostringstream text;
  text.precision(decimals);
  text << std::fixed << value;
  return text.str();
}

std::string shown(double value) {  // as Python's {:g} prints a number the user typed
  std::ostringstream text;
  text << value;
  return text.str();
}

// round(fraction * hops) hops, at most hops - 1 (so that consecutive segments advance)
int64_t overlap_hops(double fraction, int64_t hops) {
  return std::min(static_cast<int64_t>(std::nearbyint(fraction * static_cast<double>(hops))), hops - 1);
}

}  // namespace

Geometry resolve_geometry(const SegmentRequest& request, const Separator& separator) {
  const int64_t hop = separator.hop_length;
  const double rate = separator.sample_rate;
  if (request.seconds && request.samples) throw HostError("give --segment (seconds) or --segment-samples, not both", 2);
  if (request.overlap_fraction && request.overlap_samples) {
    throw HostError("give --overlap (a fraction) or --overlap-samples, not both", 2);
  }
  Geometry geometry;
  if (request.seconds) {
    const double seconds = *request.seconds;
    if (seconds > kLongestSeconds) {
      throw HostError("--segment " + shown(seconds) + " s is longer than " + shown(kLongestSeconds) +
                          " s; if that is a count of samples, use --segment-samples " +
                          std::to_string(std::llround(seconds)) + " (= --segment " + format(seconds / rate, 2) + ")",
                      2);
    }
    const auto hops = static_cast<int64_t>(std::nearbyint(seconds * rate / hop));
    if (hops < 2) {
      throw HostError("--segment " + shown(seconds) + " s is shorter than this model's minimum of " +
                          format(2 * hop / rate, 3) + " s (two STFT hops)",
                      2);
    }
    geometry.segment = hops * hop;
  } else if (request.samples) {
    if (*request.samples < 2 * hop) {
      throw HostError("--segment-samples " + std::to_string(*request.samples) + " is shorter than this model's minimum of " +
                          std::to_string(2 * hop) + " samples (two STFT hops)",
                      2);
    }
    geometry.segment = *request.samples;
  } else {
    geometry.segment = separator.segment;
  }
  const bool segment_given = request.seconds || request.samples;
  if (request.overlap_samples) {
    geometry.overlap = *request.overlap_samples;
  } else if (request.overlap_fraction || segment_given) {
    const double fraction = request.overlap_fraction.value_or(separator.overlap_fraction);
    if (geometry.segment % hop == 0) {
      geometry.overlap = overlap_hops(fraction, geometry.segment / hop) * hop;
    } else {  // a segment in samples that is not whole hops: the overlap in samples, by the same rule
      geometry.overlap = overlap_hops(fraction, geometry.segment);
    }
  } else {
    geometry.overlap = separator.overlap;
  }
  if (geometry.overlap >= geometry.segment) {
    throw HostError("the overlap (" + std::to_string(geometry.overlap) + " samples) must be shorter than the segment (" +
                        std::to_string(geometry.segment) + " samples)",
                    2);
  }
  return geometry;
}
