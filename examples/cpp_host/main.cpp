// zoo_host: separate a stereo WAV file with a model exported by `zoo export`.
//
//   zoo_host MODEL INPUT.wav OUTPUT_DIR [--segment N] [--overlap N] [--batch-size N] [--device D] [--verbose]
//
// MODEL is a TorchScript artifact (NAME.ts.pt: waveform in, stems out, chunked by its own separate_chunked
// method) or an AOTInductor package (NAME.pt2: the spectrogram core; this host does padding, STFT, framing,
// inverse STFT and the same chunking around it). Writes OUTPUT_DIR/<stem>.wav (32-bit float) for every stem
// named in the file's metadata and prints what it wrote, the start-up time (loading the model and the input)
// and, apart from it, the separation's time, real-time factor and CPU time; --verbose also prints the embedded
// metadata (zoo.json). Each format's loading lives in its own file (torchscript_separator.cpp,
// aoti_separator.cpp).
// Exit codes: 0 ok, 2 bad input (missing file, wrong sample rate, mono, not an svs-zoo model), 1 failure.
#include <c10/core/InferenceMode.h>
#include <malloc.h>
#include <sys/resource.h>

#include <chrono>
#include <climits>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "host_error.h"
#include "separator.h"
#include "wav_io.h"

namespace fs = std::filesystem;

namespace {

struct Options {
  std::string model_path;
  std::string input_path;
  std::string output_dir;
  std::optional<int64_t> segment;
  std::optional<int64_t> overlap;
  std::optional<std::string> device;
  int64_t batch_size = 4;
  bool verbose = false;
};

const char* const kUsage =
    "usage: zoo_host MODEL(.ts.pt|.pt2) INPUT.wav OUTPUT_DIR [--segment N] [--overlap N] [--batch-size N] "
    "[--device DEVICE] [--verbose]";

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
    "  --device DEVICE  cpu, cuda or cuda:N (default: cpu for TorchScript, the package's own for AOTInductor)\n"
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
    } else if (arg == "--device") {
      if (i + 1 >= argc) throw HostError(arg + " needs a value\n" + kUsage, 2);
      options.device = argv[++i];
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

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + 1e-6 * (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

double seconds_since(std::chrono::steady_clock::time_point began) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
}

int run(const Options& options, std::chrono::steady_clock::time_point started) {
  const bool aoti = ends_with(options.model_path, ".pt2");
  const Separator separator = aoti ? load_aoti(options.model_path, options.device, options.verbose)
                                   : load_torchscript(options.model_path, options.device, options.verbose);
  const Audio audio = read_stereo(options.input_path);
  if (audio.sample_rate != separator.sample_rate) {
    throw HostError(options.input_path + " is sampled at " + std::to_string(audio.sample_rate) + " Hz; the model needs " +
                        std::to_string(separator.sample_rate) + " Hz (resample it first)",
                    2);
  }
  const int64_t segment = options.segment.value_or(separator.segment);
  const int64_t overlap = options.overlap.value_or(separator.overlap);
  const int64_t samples = audio.samples.size(-1);
  const double startup = seconds_since(started);

  // timed: moving the mixture to the device, separating, and the stems back in host memory
  c10::InferenceMode inference;
  const auto began = std::chrono::steady_clock::now();
  const double cpu_began = cpu_seconds();
  const at::Tensor stems =
      separator.separate(audio.samples.to(separator.device), segment, overlap, options.batch_size).to(at::kCPU);
  const double cpu = cpu_seconds() - cpu_began;
  const double seconds = seconds_since(began);
  const double duration = static_cast<double>(samples) / audio.sample_rate;

  fs::create_directories(options.output_dir);
  for (size_t i = 0; i < separator.stems.size(); ++i) {
    const auto path = (fs::path(options.output_dir) / (separator.stems[i] + ".wav")).string();
    write_wav(path, stems[0][static_cast<int64_t>(i)], audio.sample_rate);
    std::cout << "wrote " << path << "\n";
  }
  std::cout << "format: " << (aoti ? "aoti" : "torchscript") << " on " << separator.device << ", segment " << segment
            << ", overlap " << overlap << ", batch size " << options.batch_size << "\n";
  std::cout << "start-up " << startup << " s (loading the model and reading the input)\n";
  std::cout << "separated " << duration << " s of audio in " << seconds << " s (real-time factor " << seconds / duration
            << "; CPU time " << cpu << " s)\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const auto started = std::chrono::steady_clock::now();
#ifdef __GLIBC__
  // Keep freed activations in the heap instead of unmapping them and page-faulting them back for every
  // segment (the same setting as zoo_core/allocator.py; README, Performance, has the measured gain).
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, INT_MAX);
  mallopt(M_TOP_PAD, 256 << 20);
#endif
  try {
    return run(parse_options(argc, argv), started);
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
