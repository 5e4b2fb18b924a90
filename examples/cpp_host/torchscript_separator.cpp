// The TorchScript format: the module does everything (padding, STFT, network, inverse STFT, chunking).
#include <torch/script.h>

#include <iostream>
#include <memory>
#include <regex>

#include "host_error.h"
#include "separator.h"

namespace {

// The value of a top-level string field of the embedded zoo.json ("torch_version": "2.13.0+cpu").
std::string json_string_field(const std::string& json, const std::string& key) {
  std::smatch match;
  if (!std::regex_search(json, match, std::regex("\"" + key + "\":\\s*\"([^\"]*)\""))) return "";
  return match[1];
}

}  // namespace

Separator load_torchscript(const std::string& path, const std::optional<std::string>& device_name, bool verbose) {
  const c10::Device device = parse_device(device_name.value_or("auto"));
  torch::jit::ExtraFilesMap extra{{"zoo.json", ""}};
  std::shared_ptr<torch::jit::Module> module;
  try {
    module = std::make_shared<torch::jit::Module>(torch::jit::load(path, device, extra));
  } catch (const c10::Error&) {
    throw HostError(path + " is not a TorchScript artifact (or it is corrupted)", 2);
  }
  const std::string& metadata = extra["zoo.json"];
  if (metadata.empty() || !module->find_method("separate_chunked") || !module->hasattr("model") ||
      !module->attr("model").toModule().hasattr("hop_length")) {
    throw HostError(path + " is a TorchScript module but not an svs-zoo artifact (no zoo.json or no separate_chunked)", 2);
  }
  check_torch_version(json_string_field(metadata, "torch_version"), path);
  const std::string frozen_for = json_string_field(metadata, "frozen_for");
  if (!frozen_for.empty() && frozen_for != device.str().substr(0, frozen_for.size())) {
    throw HostError(path + " is frozen for " + frozen_for + "; run it with --device " + frozen_for, 2);
  }
  if (verbose) std::cout << "metadata (zoo.json):\n" << metadata << "\n";
  module->eval();
  // This host calls separate_chunked once per process: TorchScript's profiling executor would spend that one
  // call profiling (measured 1.13x eager's time on 60 s of tfc-tdf-large); the plain interpreter runs the
  // model's large convolutions as fast as eager does.
  torch::jit::setGraphExecutorOptimize(false);
  Separator separator;
  separator.device = device;
  separator.sample_rate = static_cast<int>(module->run_method("sample_rate").toInt());
  for (const auto& stem : module->run_method("stems").toListRef()) separator.stems.push_back(stem.toStringRef());
  separator.segment = module->run_method("default_segment").toInt();
  separator.overlap = module->run_method("default_overlap").toInt();
  separator.hop_length = module->attr("model").toModule().attr("hop_length").toInt();
  separator.overlap_fraction = default_overlap_fraction(metadata);
  separator.separate = [module](const at::Tensor& mixture, int64_t segment, int64_t overlap, int64_t batch) {
    return module->get_method("separate_chunked")({mixture, segment, overlap, batch}).toTensor();
  };
  return separator;
}
