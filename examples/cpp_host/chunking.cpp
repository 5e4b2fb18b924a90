#include "chunking.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/minimum.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/zeros.h>

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

at::Tensor overlap_weights(int64_t length, int64_t overlap) {
  auto weights = at::ones({length}, at::kFloat);
  const int64_t ramp_length = std::min(overlap, length);
  if (ramp_length > 0) {
    auto ramp = at::arange(1, ramp_length + 1, at::kFloat) / static_cast<double>(overlap + 1);
    auto head = weights.narrow(0, 0, ramp_length);
    head.copy_(at::minimum(head, ramp));
    auto tail = weights.narrow(0, length - ramp_length, ramp_length);
    tail.copy_(at::minimum(tail, ramp.flip(0)));
  }
  return weights;
}

at::Tensor blend_segments(const at::Tensor& mixture, int64_t stems, int64_t segment, int64_t overlap,
                          int64_t batch_size, const std::function<at::Tensor(const at::Tensor&)>& estimate) {
  if (batch_size < 1) {
    throw HostError("batch size must be at least 1", 2);
  }
  const int64_t batch = mixture.size(0);
  const int64_t total = mixture.size(-1);
  const auto starts = segment_starts(total, segment, overlap);
  auto target = at::zeros({batch, stems, mixture.size(1), total}, mixture.options());
  auto weight_sum = at::zeros({total}, mixture.options());
  auto length_at = [&](size_t i) { return std::min(segment, total - starts[i]); };
  size_t first = 0;
  while (first < starts.size()) {
    const int64_t length = length_at(first);
    std::vector<at::Tensor> pieces;
    size_t last = first;
    while (last < starts.size() && static_cast<int64_t>(pieces.size()) < batch_size && length_at(last) == length) {
      pieces.push_back(mixture.narrow(2, starts[last], length));
      ++last;
    }
    const auto estimates = estimate(at::cat(pieces, 0));
    const auto weights = overlap_weights(length, overlap).to(mixture.options());
    for (size_t k = 0; k < last - first; ++k) {
      const int64_t start = starts[first + k];
      target.narrow(-1, start, length).add_(estimates.narrow(0, static_cast<int64_t>(k) * batch, batch) * weights);
      weight_sum.narrow(0, start, length).add_(weights);
    }
    first = last;
  }
  return target / weight_sum;
}
