#include "spectral_host.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/angle.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/col2im.h>
#include <ATen/ops/constant_pad_nd.h>
#include <ATen/ops/fft_irfft.h>
#include <ATen/ops/hann_window.h>
#include <ATen/ops/polar.h>
#include <ATen/ops/stft.h>
#include <ATen/ops/view_as_complex.h>
#include <ATen/ops/view_as_real.h>
#include <ATen/ops/where.h>
#include <ATen/ops/zeros.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>

#include <algorithm>
#include <limits>

#include "host_error.h"

namespace {
const std::string& required(const std::unordered_map<std::string, std::string>& metadata, const std::string& key) {
  const auto found = metadata.find(key);
  if (found == metadata.end()) {
    throw HostError("the package's metadata has no '" + key + "': not an svs-zoo AOTInductor package", 2);
  }
  return found->second;
}

// torch.nn.functional.fold with a 1 x n_fft kernel: overlap-add of [N, n_fft, frames] columns at a hop.
at::Tensor overlap_add(const at::Tensor& columns, int64_t length, int64_t n_fft, int64_t hop) {
  return at::col2im(columns, {1, length}, {1, n_fft}, {1, 1}, {0, 0}, {1, hop});
}
}  // namespace

FramingSettings FramingSettings::from_metadata(const std::unordered_map<std::string, std::string>& metadata) {
  return {std::stoll(required(metadata, "n_fft")),       std::stoll(required(metadata, "hop_length")),
          std::stoll(required(metadata, "time_factor")), std::stoll(required(metadata, "bins")),
          std::stoll(required(metadata, "model_stems")), required(metadata, "center") == "1",
          required(metadata, "representation") == "magnitude"};
}

SpectralHost::SpectralHost(std::shared_ptr<torch::inductor::AOTIModelPackageLoader> core, FramingSettings settings,
                           c10::Device device)
    : core_(std::move(core)),
      settings_(settings),
      window_(at::hann_window(settings.n_fft, at::TensorOptions().dtype(at::kFloat).device(device))) {}

std::pair<int64_t, int64_t> SpectralHost::padding(int64_t samples) const {
  const int64_t hop = settings_.hop_length;
  const int64_t n_fft = settings_.n_fft;
  const int64_t factor = settings_.time_factor;
  int64_t left = 0;
  int64_t needed = 0;
  if (settings_.center) {
    needed = (samples + hop - 1) / hop + 1;
  } else {
    left = n_fft - hop;  // the first sample sits under a full window overlap
    const int64_t span = samples + 2 * left - n_fft;
    needed = (std::max<int64_t>(span, 0) + hop - 1) / hop + 1;
  }
  // more samples than a centred STFT reflects (n_fft / 2 at each end)
  const int64_t shortest = settings_.center ? n_fft / (2 * hop) + 2 : 1;
  int64_t frames = std::max({needed, factor, shortest});
  frames = (frames + factor - 1) / factor * factor;
  const int64_t total = settings_.center ? hop * (frames - 1) : n_fft + hop * (frames - 1);
  return {left, total - samples - left};
}

at::Tensor SpectralHost::stft(const at::Tensor& waveform) const {
  const int64_t batch = waveform.size(0), channels = waveform.size(1), samples = waveform.size(2);
  auto spec = at::stft(waveform.reshape({batch * channels, samples}), settings_.n_fft, settings_.hop_length,
                       settings_.n_fft, window_, settings_.center, "reflect", /*normalized=*/false,
                       /*onesided=*/true, /*return_complex=*/true);
  return spec.reshape({batch, channels, spec.size(-2), spec.size(-1)});
}

at::Tensor SpectralHost::istft(const at::Tensor& spec, int64_t length) const {
  const int64_t batch = spec.size(0), channels = spec.size(1), frames = spec.size(3);
  const int64_t n_fft = settings_.n_fft, hop = settings_.hop_length;
  auto chunks = at::fft_irfft(spec.reshape({batch * channels, -1, frames}), n_fft, 1) * window_.unsqueeze(-1);
  const int64_t full = n_fft + hop * (frames - 1);
  auto signal = overlap_add(chunks, full, n_fft, hop).reshape({batch * channels, full});
  auto squares = (window_ * window_).unsqueeze(-1).expand({n_fft, frames}).unsqueeze(0);
  auto norm = overlap_add(squares, full, n_fft, hop).reshape({full});
  const double tiny = std::numeric_limits<float>::min();
  signal = at::where(norm > tiny, signal / norm.clamp_min(tiny), signal);
  const int64_t start = settings_.center ? n_fft / 2 : 0;
  signal = signal.slice(1, start, start + length);
  if (signal.size(-1) < length) signal = at::constant_pad_nd(signal, {0, length - signal.size(-1)}, 0);
  return signal.reshape({batch, channels, length});
}

at::Tensor SpectralHost::estimate(const at::Tensor& mixture) {
  const int64_t samples = mixture.size(-1);
  const auto [left, right] = padding(samples);
  const auto padded = at::constant_pad_nd(mixture, {left, right}, 0);
  const auto spec = stft(padded);  // [B, C, n_fft/2 + 1, T]
  const int64_t batch = spec.size(0), channels = spec.size(1), total_bins = spec.size(2), frames = spec.size(3);
  const int64_t bins = settings_.bins, stems = settings_.model_stems;
  const auto kept = spec.slice(2, 0, bins);
  at::Tensor image;
  if (settings_.magnitude) {
    image = kept.abs();
  } else {  // [B, C, bins, T] complex -> [B, C*2, bins, T] as [Re L, Im L, Re R, Im R]
    image = at::view_as_real(kept).permute({0, 1, 4, 2, 3}).reshape({batch, channels * 2, bins, frames});
  }
  const auto out = core_->run({image.contiguous()}).at(0);  // [B, stems, image channels, bins, T]
  at::Tensor estimate;
  if (settings_.magnitude) {
    estimate = at::polar(out, at::angle(kept).unsqueeze(1).expand_as(out));
  } else {
    estimate = at::view_as_complex(
        out.reshape({batch, stems, channels, 2, bins, frames}).permute({0, 1, 2, 4, 5, 3}).contiguous());
  }
  if (bins < total_bins) {  // the bins the network does not see come back as zeros
    auto zeros = at::zeros({batch, stems, channels, total_bins - bins, frames}, estimate.options());
    estimate = at::cat({estimate, zeros}, 3);
  }
  const auto waves = istft(estimate.reshape({batch * stems, channels, total_bins, frames}), padded.size(-1));
  return waves.slice(-1, left, left + samples).reshape({batch, stems, channels, samples});
}
