#include "separator.h"

#include <ATen/Context.h>
#include <torch/headeronly/version.h>

#include <regex>

#include "host_error.h"

c10::Device parse_device(const std::string& name) {
  if (name == "auto") return at::hasCUDA() ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  std::optional<c10::Device> device;
  try {
    device = c10::Device(name);
  } catch (const std::exception&) {
  }
  if (!device || !(device->is_cpu() || device->is_cuda())) {
    throw HostError("unknown device '" + name + "'; use auto, cpu, cuda or cuda:N", 2);
  }
  if (device->is_cuda() && !at::hasCUDA()) {
    throw HostError("CUDA is not available: this libtorch was built without CUDA, or the machine has no GPU", 2);
  }
  const auto gpus = static_cast<int64_t>(at::getNumGPUs());
  if (device->is_cuda() && device->has_index() && device->index() >= gpus) {
    throw HostError("--device " + name + ": this machine has " + std::to_string(gpus) + " CUDA device(s)", 2);
  }
  return *device;
}

double default_overlap_fraction(const std::string& zoo_json) {
  // zoo.json lists the registry entry (which always has "overlap", a fraction) before anything else with that
  // key (the "chunked" defaults, in samples): the first match is the entry's
  std::smatch match;
  if (std::regex_search(zoo_json, match, std::regex(R"("overlap":\s*([0-9.eE+-]+))"))) {
    try {
      const double fraction = std::stod(match[1]);
      if (fraction >= 0 && fraction < 1) return fraction;
    } catch (const std::exception&) {  // not a number after all: the default below
    }
  }
  return 0.25;
}

void check_torch_version(const std::string& exported, const std::string& path) {
  std::smatch parts;
  if (!std::regex_search(exported, parts, std::regex(R"((\d+)\.(\d+)\.(\d+))"))) {
    throw HostError(path + ": unreadable torch_version '" + exported + "' in its metadata", 2);
  }
  const std::vector<int> file{std::stoi(parts[1]), std::stoi(parts[2]), std::stoi(parts[3])};
  const std::vector<int> host{TORCH_VERSION_MAJOR, TORCH_VERSION_MINOR, TORCH_VERSION_PATCH};
  if (file > host) {
    throw HostError(path + " was exported with torch " + exported + ", newer than this host's libtorch " +
                        TORCH_VERSION + "; rebuild the host against that torch",
                    2);
  }
}
