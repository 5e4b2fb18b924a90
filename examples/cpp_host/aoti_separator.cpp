// The AOTInductor format: the package holds the spectrogram core; SpectralHost and blend_segments do the rest.
#include <ATen/TensorOperators.h>
#include <ATen/ops/cat.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>

#include <iostream>
#include <memory>
#include <sstream>

#include "chunking.h"
#include "host_error.h"
#include "separator.h"
#include "spectral_host.h"

Separator load_aoti(const std::string& path, const std::optional<std::string>& device_name, bool verbose) {
  std::shared_ptr<torch::inductor::AOTIModelPackageLoader> package;
  try {
    package = std::make_shared<torch::inductor::AOTIModelPackageLoader>(path);
  } catch (const std::exception&) {
    throw HostError(path + " is not an AOTInductor package for this machine (or it is corrupted)", 2);
  }
  const auto metadata = package->get_metadata();
  const auto json = metadata.find("zoo.json");
  if (json == metadata.end()) throw HostError(path + " is an AOTInductor package but not an svs-zoo one (no zoo.json)", 2);
  check_torch_version(metadata.at("torch_version"), path);
  // packages from before the device entry were compiled for the CPU
  const auto compiled_for = metadata.count("device") ? metadata.at("device") : std::string("cpu");
  const c10::Device device = parse_device(device_name.value_or(compiled_for));
  if (device.type() != parse_device(compiled_for).type()) {
    throw HostError(path + " is compiled for " + compiled_for + "; run it with --device " + compiled_for +
                        " or export it again with zoo export --format aoti --device " + device.str(),
                    2);
  }
  if (verbose) std::cout << "metadata (zoo.json):\n" << json->second << "\n";
  Separator separator;
  separator.device = device;
  separator.sample_rate = std::stoi(metadata.at("sample_rate"));
  std::stringstream stems(metadata.at("stems"));
  for (std::string stem; std::getline(stems, stem, ',');) separator.stems.push_back(stem);
  separator.segment = std::stoll(metadata.at("segment"));
  separator.overlap = std::stoll(metadata.at("overlap"));
  const auto settings = FramingSettings::from_metadata(metadata);
  separator.hop_length = settings.hop_length;
  separator.overlap_fraction = default_overlap_fraction(json->second);
  auto host = std::make_shared<SpectralHost>(package, settings, device);
  // a vocal model's stems also name accompaniment = mixture - vocals, which the host forms itself
  const bool complement = static_cast<int64_t>(separator.stems.size()) == settings.model_stems + 1;
  const int64_t model_stems = settings.model_stems;
  separator.separate = [host, complement, model_stems](const at::Tensor& mixture, int64_t segment, int64_t overlap,
                                                       int64_t batch) -> at::Tensor {
    auto estimates = blend_segments(mixture, model_stems, segment, overlap, batch,
                                    [&](const at::Tensor& piece) { return host->estimate(piece); });
    return complement ? at::cat({estimates, mixture.unsqueeze(1) - estimates}, 1) : estimates;
  };
  return separator;
}
