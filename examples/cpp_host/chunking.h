// The segment blending of zoo_core/chunking.py, line for line: the AOTInductor path chunks in the host.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <vector>

// Start offsets of the segments (each `segment` samples, the last may be shorter) that cover `total` samples.
std::vector<int64_t> segment_starts(int64_t total, int64_t segment, int64_t overlap);

// 1 in the middle, linear ramps of `overlap` samples at both ends; overlapping ramps sum to 1.
at::Tensor overlap_weights(int64_t length, int64_t overlap);

// Runs `estimate` ([n, 2, length] -> [n, stems, 2, length]) over `mixture` [batch, 2, samples] segment by
// segment, up to `batch_size` segments of equal length at a time, and blends the results: the exported module's
// separate_chunked, for hosts that run the model core themselves. Returns [batch, stems, 2, samples].
at::Tensor blend_segments(const at::Tensor& mixture, int64_t stems, int64_t segment, int64_t overlap,
                             int64_t batch_size, const std::function<at::Tensor(const at::Tensor&)>& estimate);
