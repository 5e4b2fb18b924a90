#include "chunking.h"

#include <algorithm>

#include "host_error.h"

std::vector<int64_t> segment_starts(int64_t total, int64_t segment, int64_t overlap) {
  if (segment <= 0 || overlap < 0 || overlap >= segment) {
    throw HostError("need 0 <= overlap < segment, got segment " + std::to_string(segment) + ", overlap " +
                        std::to_string(overlap),
                    2);
  }
  const int64_t stride = segment - overlap;
  std::vector<int64_t> starts{0};
  while (starts.back() + segment < total) {
    starts.push_back(starts.back() + stride);
  }
  return starts;
}

torch::Tensor overlap_weights(int64_t length, int64_t overlap) {
  auto weights = torch::ones({length}, torch::kFloat32);
  const int64_t ramp_length = std::min(overlap, length);
  if (ramp_length > 0) {
    auto ramp = torch::arange(1, ramp_length + 1, torch::kFloat32) / static_cast<double>(overlap + 1);
    using torch::indexing::Slice;
    weights.index_put_({Slice(0, ramp_length)}, torch::minimum(weights.index({Slice(0, ramp_length)}), ramp));
    weights.index_put_({Slice(length - ramp_length, length)},
                       torch::minimum(weights.index({Slice(length - ramp_length, length)}), ramp.flip(0)));
  }
  return weights;
}

torch::Tensor blend_segments(const torch::Tensor& mixture, int64_t stems, int64_t segment, int64_t overlap,
                             int64_t batch_size, const std::function<torch::Tensor(const torch::Tensor&)>& estimate) {
  using torch::indexing::Ellipsis;
  using torch::indexing::Slice;
  if (batch_size < 1) {
    throw HostError("batch size must be at least 1", 2);
  }
  const int64_t batch = mixture.size(0);
  const int64_t total = mixture.size(-1);
  const auto starts = segment_starts(total, segment, overlap);
  auto target = torch::zeros({batch, stems, mixture.size(1), total}, mixture.options());
  auto weight_sum = torch::zeros({total}, mixture.options());
  auto length_at = [&](size_t i) { return std::min(segment, total - starts[i]); };
  size_t first = 0;
  while (first < starts.size()) {
    const int64_t length = length_at(first);
    std::vector<torch::Tensor> pieces;
    size_t last = first;
    while (last < starts.size() && static_cast<int64_t>(pieces.size()) < batch_size && length_at(last) == length) {
      pieces.push_back(mixture.index({Slice(), Slice(), Slice(starts[last], starts[last] + length)}));
      ++last;
    }
    const auto estimates = estimate(torch::cat(pieces, 0));
    const auto weights = overlap_weights(length, overlap).to(mixture.options());
    for (size_t k = 0; k < last - first; ++k) {
      const int64_t start = starts[first + k];
      const auto span = Slice(start, start + length);
      const auto one = estimates.index({Slice(k * batch, (k + 1) * batch)});
      target.index({Ellipsis, span}) += one * weights;
      weight_sum.index({span}) += weights;
    }
    first = last;
  }
  return target / weight_sum;
}
