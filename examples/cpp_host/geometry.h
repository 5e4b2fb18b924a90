// Segment and overlap as `zoo` takes them (seconds, a fraction) or, explicitly, in samples: the rule of
// SeparationOptions.geometry in zoo_core/separate.py, so that zoo_host --segment S cuts like zoo separate --segment S.
#pragma once

#include <cstdint>
#include <optional>

#include "separator.h"

struct SegmentRequest {
  std::optional<double> seconds;           // --segment
  std::optional<int64_t> samples;          // --segment-samples
  std::optional<double> overlap_fraction;  // --overlap
  std::optional<int64_t> overlap_samples;  // --overlap-samples
};

struct Geometry {
  int64_t segment = 0;  // samples at the model's rate
  int64_t overlap = 0;
};

// Seconds become whole STFT hops (Python's round: half to even), at least two; a fraction of a whole-hop segment
// becomes whole hops too, below the segment. Without a segment: the file's defaults; without an overlap: the
// model's default fraction of the segment. HostError (exit 2) for what cannot be used, in one line.
Geometry resolve_geometry(const SegmentRequest& request, const Separator& separator);
