// The waveform side of an AOTInductor package: padding, STFT, framing, inverse STFT, done with libtorch ops.
//
// The package holds only the spectrogram core (real tensors), so the host repeats what zoo_core/model.py
// (to_image / from_image) and zoo_core/framing.py do around it: pad to a frame count the network accepts, STFT
// (periodic Hann window), keep the lowest `bins` bins, complex-as-channels [ReL, ImL, ReR, ImR] or magnitude
// framing, core (one image per stem), inverse framing with zeros above `bins`, overlap-add inverse STFT
// normalised by the summed squared window, crop.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <memory>
#include <string>
#include <unordered_map>

struct FramingSettings {
  int64_t n_fft;
  int64_t hop_length;
  int64_t time_factor;
  int64_t bins;         // the lowest bins the core sees
  int64_t model_stems;  // images the core returns, one per stem
  bool center;
  bool magnitude;  // magnitude framing: the core's output gets the mixture's phase back

  static FramingSettings from_metadata(const std::unordered_map<std::string, std::string>& metadata);
};

namespace torch::inductor {
class AOTIModelPackageLoader;
}

class SpectralHost {
 public:
  // `device`: where the package runs (the device it was compiled for); the mixture must be there too.
  SpectralHost(std::shared_ptr<torch::inductor::AOTIModelPackageLoader> core, FramingSettings settings,
               c10::Device device);

  // mixture [batch, 2, samples] -> estimates [batch, stems, 2, samples], like SeparationModel.forward.
  at::Tensor estimate(const at::Tensor& mixture);

 private:
  std::pair<int64_t, int64_t> padding(int64_t samples) const;
  at::Tensor stft(const at::Tensor& waveform) const;
  at::Tensor istft(const at::Tensor& spec, int64_t length) const;

  std::shared_ptr<torch::inductor::AOTIModelPackageLoader> core_;
  FramingSettings settings_;
  at::Tensor window_;  // periodic Hann, on the device
};
