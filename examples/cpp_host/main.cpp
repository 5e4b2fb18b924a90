// zoo_host: separate a stereo WAV file with a model exported by `zoo export`.
//
//   zoo_host MODEL INPUT.wav OUTPUT_DIR [--segment N] [--overlap N] [--batch-size N] [--verbose]
//
// MODEL is a TorchScript artifact (NAME.ts.pt: waveform in, stems out, chunked by its own separate_chunked
// method) or an AOTInductor package (NAME.pt2: the spectrogram core; this host does padding, STFT, framing,
// inverse STFT and the same chunking around it). Writes OUTPUT_DIR/<stem>.wav (32-bit float) for every stem
// named in the file's metadata and prints what it wrote, the time taken and the real-time factor; --verbose
// also prints the embedded metadata (zoo.json).
// Exit codes: 0 ok, 2 bad input (missing file, wrong sample rate, mono, not an svs-zoo model), 1 failure.
#include <climits>
#include <malloc.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/headeronly/version.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "chunking.h"
#include "host_error.h"
#include "spectral_host.h"
#include "wav_io.h"

namespace fs = std::filesystem;

namespace {

struct Options {
  std::string model_path;
  std::string input_path;
  std::string output_dir;
  std::optional<int64_t> segment;
  std::optional<int64_t> overlap;
  int64_t batch_size = 4;
  bool verbose = false;
};

const char* const kUsage =
    "usage: zoo_host MODEL(.ts.pt|.pt2) INPUT.wav OUTPUT_DIR [--segment N] [--overlap N] [--batch-size N] "
    "[--verbose]";

const char* const kHelp =
    "Separate a stereo WAV file with a model exported by `zoo export`; writes OUTPUT_DIR/<stem>.wav (32-bit\n"
    "float) for every stem the model gives.\n"
    "\n"
    "  MODEL            a TorchScript artifact (.ts.pt) or an AOTInductor package (.pt2)\n"
    "  INPUT.wav        stereo, at the model's sample rate\n"
    "  OUTPUT_DIR       created if needed\n"
    "  --segment N      segment length in samples (default: the file's metadata)\n"
    "  --overlap N      overlap in samples (default: the file's metadata)\n"
    "  --batch-size N   segments per model call (default 4)\n"
    "  --verbose        also print the embedded metadata (zoo.json)\n"
    "  --help           this text\n";

struct HelpRequested {};

int64_t parse_count(const std::string& flag, const std::string& value) {
  try {
    size_t used = 0;
    const long long parsed = std::stoll(value, &used);
    if (used == value.size() && parsed >= 0) return parsed;
  } catch (const std::exception&) {
  }
  throw HostError(flag + " needs a non-negative integer, got '" + value + "'", 2);
}

Options parse_options(int argc, char** argv) {
  std::vector<std::string> positional;
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") throw HelpRequested{};
    if (arg == "--verbose" || arg == "-v") {
      options.verbose = true;
    } else if (arg == "--segment" || arg == "--overlap" || arg == "--batch-size") {
      if (i + 1 >= argc) throw HostError(arg + " needs a value\n" + kUsage, 2);
      const int64_t value = parse_count(arg, argv[++i]);
      if (arg == "--segment") options.segment = value;
      if (arg == "--overlap") options.overlap = value;
      if (arg == "--batch-size") options.batch_size = value;
    } else if (arg.rfind("--", 0) == 0) {
      throw HostError("unknown option " + arg + "\n" + kUsage, 2);
    } else {
      positional.push_back(arg);
    }
  }
  if (positional.size() != 3) {
    throw HostError("expected MODEL, INPUT.wav and OUTPUT_DIR, got " + std::to_string(positional.size()) +
                        " argument(s)\n" + kUsage,
                    2);
  }
  options.model_path = positional[0];
  options.input_path = positional[1];
  options.output_dir = positional[2];
  for (const auto& path : {options.model_path, options.input_path}) {
    if (!fs::is_regular_file(path)) throw HostError(path + ": no such file", 2);
  }
  return options;
}

// A file written by a newer torch may use operators this libtorch lacks: refuse it with a clear message.
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

// The value of a top-level string field of the embedded zoo.json ("torch_version": "2.13.0+cpu").
std::string json_string_field(const std::string& json, const std::string& key) {
  std::smatch match;
  if (!std::regex_search(json, match, std::regex("\"" + key + "\":\\s*\"([^\"]*)\""))) return "";
  return match[1];
}

// A separation job, whichever format runs it: stems [1, stems, 2, samples].
struct Separator {
  int sample_rate;
  std::vector<std::string> stems;
  int64_t segment;
  int64_t overlap;
  std::function<torch::Tensor(const torch::Tensor&, int64_t, int64_t, int64_t)> separate;
};

Separator load_torchscript(const std::string& path, std::shared_ptr<torch::jit::Module>& holder, bool verbose) {
  torch::jit::ExtraFilesMap extra{{"zoo.json", ""}};
  try {
    holder = std::make_shared<torch::jit::Module>(torch::jit::load(path, torch::kCPU, extra));
  } catch (const c10::Error&) {
    throw HostError(path + " is not a TorchScript artifact (or it is corrupted)", 2);
  }
  const std::string& metadata = extra["zoo.json"];
  if (metadata.empty() || !holder->find_method("separate_chunked")) {
    throw HostError(path + " is a TorchScript module but not an svs-zoo artifact (no zoo.json or no separate_chunked)", 2);
  }
  check_torch_version(json_string_field(metadata, "torch_version"), path);
  if (verbose) std::cout << "metadata (zoo.json):\n" << metadata << "\n";
  holder->eval();
  Separator separator;
  separator.sample_rate = static_cast<int>(holder->run_method("sample_rate").toInt());
  for (const auto& stem : holder->run_method("stems").toListRef()) separator.stems.push_back(stem.toStringRef());
  separator.segment = holder->run_method("default_segment").toInt();
  separator.overlap = holder->run_method("default_overlap").toInt();
  auto module = holder;
  separator.separate = [module](const torch::Tensor& mixture, int64_t segment, int64_t overlap, int64_t batch) {
    return module->get_method("separate_chunked")({mixture, segment, overlap, batch}).toTensor();
  };
  return separator;
}

Separator load_aoti(const std::string& path, std::shared_ptr<torch::inductor::AOTIModelPackageLoader>& holder,
                    bool verbose) {
  try {
    holder = std::make_shared<torch::inductor::AOTIModelPackageLoader>(path);
  } catch (const std::exception&) {
    throw HostError(path + " is not an AOTInductor package for this machine (or it is corrupted)", 2);
  }
  const auto metadata = holder->get_metadata();
  const auto json = metadata.find("zoo.json");
  if (json == metadata.end()) throw HostError(path + " is an AOTInductor package but not an svs-zoo one (no zoo.json)", 2);
  check_torch_version(metadata.at("torch_version"), path);
  if (verbose) std::cout << "metadata (zoo.json):\n" << json->second << "\n";
  Separator separator;
  separator.sample_rate = std::stoi(metadata.at("sample_rate"));
  std::stringstream stems(metadata.at("stems"));
  for (std::string stem; std::getline(stems, stem, ',');) separator.stems.push_back(stem);
  separator.segment = std::stoll(metadata.at("segment"));
  separator.overlap = std::stoll(metadata.at("overlap"));
  const auto settings = FramingSettings::from_metadata(metadata);
  auto host = std::make_shared<SpectralHost>(*holder, settings);
  // a vocal model's stems also name accompaniment = mixture - vocals, which the host forms itself
  const bool complement = static_cast<int64_t>(separator.stems.size()) == settings.model_stems + 1;
  const int64_t model_stems = settings.model_stems;
  separator.separate = [host, complement, model_stems](const torch::Tensor& mixture, int64_t segment,
                                                       int64_t overlap, int64_t batch) {
    auto estimates = blend_segments(mixture, model_stems, segment, overlap, batch,
                                    [&](const torch::Tensor& piece) { return host->estimate(piece); });
    return complement ? torch::cat({estimates, mixture.unsqueeze(1) - estimates}, 1) : estimates;
  };
  return separator;
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int run(const Options& options) {
  std::shared_ptr<torch::jit::Module> script_module;
  std::shared_ptr<torch::inductor::AOTIModelPackageLoader> package;
  const bool aoti = ends_with(options.model_path, ".pt2");
  Separator separator = aoti ? load_aoti(options.model_path, package, options.verbose)
                             : load_torchscript(options.model_path, script_module, options.verbose);

  const Audio audio = read_stereo(options.input_path);
  if (audio.sample_rate != separator.sample_rate) {
    throw HostError(options.input_path + " is sampled at " + std::to_string(audio.sample_rate) + " Hz; the model needs " +
                        std::to_string(separator.sample_rate) + " Hz (resample it first)",
                    2);
  }
  const int64_t segment = options.segment.value_or(separator.segment);
  const int64_t overlap = options.overlap.value_or(separator.overlap);
  const int64_t samples = audio.samples.size(-1);

  c10::InferenceMode inference;
  const auto began = std::chrono::steady_clock::now();
  const torch::Tensor stems = separator.separate(audio.samples, segment, overlap, options.batch_size);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  const double duration = static_cast<double>(samples) / audio.sample_rate;

  fs::create_directories(options.output_dir);
  for (size_t i = 0; i < separator.stems.size(); ++i) {
    const auto path = (fs::path(options.output_dir) / (separator.stems[i] + ".wav")).string();
    write_wav(path, stems[0][static_cast<int64_t>(i)], audio.sample_rate);
    std::cout << "wrote " << path << "\n";
  }
  std::cout << "format: " << (aoti ? "aoti" : "torchscript") << ", segment " << segment << ", overlap " << overlap
            << ", batch size " << options.batch_size << "\n";
  std::cout << "separated " << duration << " s of audio in " << seconds << " s (real-time factor " << seconds / duration
            << ")\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
#ifdef __GLIBC__
  // Keep freed activations in the heap instead of unmapping them and page-faulting them back for every
  // segment (the same setting as zoo_core/allocator.py; README, Performance, has the measured gain).
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, INT_MAX);
  mallopt(M_TOP_PAD, 256 << 20);
#endif
  // This host calls the model once per process: TorchScript's profiling executor would run that one call in its
  // slow profiling mode; the plain interpreter is as fast as it gets for a model made of large convolutions.
  torch::jit::setGraphExecutorOptimize(false);

  try {
    return run(parse_options(argc, argv));
  } catch (const HelpRequested&) {
    std::cout << kUsage << "\n\n" << kHelp;
    return 0;
  } catch (const HostError& error) {
    std::cerr << "error: " << error.what() << "\n";
    return error.exit_code;
  } catch (const c10::Error& error) {
    std::cerr << "error: " << error.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& error) {
    std::cerr << "error: " << error.what() << "\n";
    return 1;
  }
}
