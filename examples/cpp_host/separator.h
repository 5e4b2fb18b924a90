// A separation job, whichever format runs it: the model file's settings and one call that separates.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

struct Separator {
  int sample_rate = 0;
  std::vector<std::string> stems;  // the names of the output's stems, in order
  int64_t segment = 0;             // defaults stored in the file (samples)
  int64_t overlap = 0;
  int64_t hop_length = 0;          // the STFT hop: --segment in seconds becomes whole hops
  double overlap_fraction = 0.25;  // the model's default overlap, a fraction of any segment (zoo separate's)
  c10::Device device = c10::kCPU;  // where the model runs; the mixture is moved there
  // mixture [1, 2, samples] on `device` -> stems [1, stems, 2, samples] on `device`
  std::function<at::Tensor(const at::Tensor&, int64_t segment, int64_t overlap, int64_t batch_size)> separate;
};

// A TorchScript artifact (NAME.ts.pt) on `device` (default cpu); the module chunks long inputs itself.
Separator load_torchscript(const std::string& path, const std::optional<std::string>& device, bool verbose);

// An AOTInductor package (NAME.pt2) on the device it was compiled for (`device`, if given, must name it); this
// host does padding, STFT, framing, inverse STFT and the chunking around the compiled core.
Separator load_aoti(const std::string& path, const std::optional<std::string>& device, bool verbose);

// "auto" (CUDA when this libtorch sees a GPU, else the CPU), "cpu", "cuda", "cuda:1"; HostError (exit 2) for an
// unknown name or a CUDA device this libtorch cannot use.
c10::Device parse_device(const std::string& name);

// The model's default overlap fraction from the file's zoo.json (its registry entry's "overlap"), 0.25 if absent.
double default_overlap_fraction(const std::string& zoo_json);

// A file written by a newer torch may use operators this libtorch lacks: HostError (exit 2) then.
void check_torch_version(const std::string& exported, const std::string& path);
