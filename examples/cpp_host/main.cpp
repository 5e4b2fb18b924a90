// zoo_host: separate a stereo WAV file with a model exported by `zoo export`.
//
//   zoo_host MODEL INPUT.wav OUTPUT_DIR [--segment SECONDS] [--overlap FRACTION] [--batch-size N] [--device D]
//            [--segment-samples N] [--overlap-samples N] [--verbose]
//
// MODEL is a TorchScript artifact (NAME.ts.pt: waveform in, stems out, chunked by its own separate_chunked
// method) or an AOTInductor package (NAME.pt2: the spectrogram core; this host does padding, STFT, framing,
// inverse STFT and the same chunking around it). Writes OUTPUT_DIR/<stem>.wav (32-bit float) for every stem
// named in the file's metadata and prints what it wrote, the start-up time (loading the model and the input)
// and, apart from it, the separation's time, real-time factor and CPU time; --verbose also prints the embedded
// metadata (zoo.json). Segment and overlap are in zoo's units (seconds, a fraction: geometry.cpp), or in samples
// with --segment-samples/--overlap-samples. Each format's loading lives in its own file (torchscript_separator.cpp,
// aoti_separator.cpp). Every error is one line on stderr.
// Exit codes: 0 ok, 2 bad input (missing file, wrong sample rate, mono, not an svs-zoo model), 1 failure.
#include <c10/core/InferenceMode.h>
#include <malloc.h>
#include <sys/resource.h>

#include <chrono>
#include <climits>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "geometry.h"
#include "host_error.h"
#include "separator.h"
#include "wav_io.h"

namespace fs = std::filesystem;

namespace {

struct Options {
  std::string model_path;
  std::string input_path;
  std::string output_dir;
  SegmentRequest segment;
  std::optional<std::string> device;
  int64_t batch_size = 4;
  bool verbose = false;
};

const char* const kUsage =
    "usage: zoo_host MODEL(.ts.pt|.pt2) INPUT.wav OUTPUT_DIR [--segment SECONDS] [--overlap FRACTION] "
    "[--batch-size N] [--device DEVICE] [--verbose]";

const char* const kHelp =
    "Separate a stereo WAV file with a model exported by `zoo export`; writes OUTPUT_DIR/<stem>.wav (32-bit\n"
    "float) for every stem the model gives.\n"
    "\n"
    "  MODEL            a TorchScript artifact (.ts.pt) or an AOTInductor package (.pt2)\n"
    "  INPUT.wav        stereo, at the model's sample rate\n"
    "  OUTPUT_DIR       created if needed\n"
    "  --segment SECONDS     segment length, rounded to whole STFT hops as zoo separate does (default: the\n"
    "                        file's metadata, about the model's training window)\n"
    "  --overlap FRACTION    fraction of a segment shared with the next, in [0, 1) (default: the model's, as\n"
    "                        zoo separate uses it)\n"
    "  --segment-samples N   the segment in samples instead (at the model's rate)\n"
    "  --overlap-samples N   the overlap in samples instead\n"
    "  --batch-size N        segments per model call (default 4)\n"
    "  --device DEVICE       auto, cpu, cuda or cuda:N (default: auto, CUDA when present, for TorchScript; the\n"
    "                        package's own device for AOTInductor)\n"
    "  --verbose             also print the embedded metadata (zoo.json)\n"
    "  --help                this text\n";

struct HelpRequested {};

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int64_t parse_count(const std::string& flag, const std::string& value) {
  try {
    size_t used = 0;
    const long long parsed = std::stoll(value, &used);
    if (used == value.size() && parsed >= 0) return parsed;
  } catch (const std::exception&) {
  }
  throw HostError(flag + " needs a non-negative integer, got '" + value + "'", 2);
}

double parse_number(const std::string& flag, const std::string& value, const std::string& what) {
  try {
    size_t used = 0;
    const double parsed = std::stod(value, &used);
    if (used == value.size() && std::isfinite(parsed)) return parsed;
  } catch (const std::exception&) {
  }
  throw HostError(flag + " needs " + what + ", got '" + value + "'", 2);
}

double parse_seconds(const std::string& flag, const std::string& value) {
  const double seconds = parse_number(flag, value, "a number of seconds");
  if (seconds <= 0) throw HostError(flag + " must be a positive number of seconds, got " + value, 2);
  return seconds;
}

double parse_fraction(const std::string& flag, const std::string& value) {
  const double fraction = parse_number(flag, value, "a fraction in [0, 1)");
  if (fraction < 0 || fraction >= 1) {
    throw HostError(flag + " must be a fraction of the segment in [0, 1), got " + value +
                        (fraction >= 1 ? " (for samples use --overlap-samples " + value + ")" : ""),
                    2);
  }
  return fraction;
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
      if (i + 1 >= argc) throw HostError(arg + " needs a value (see zoo_host --help)", 2);
      options.device = argv[++i];
    } else if (arg == "--segment" || arg == "--overlap" || arg == "--batch-size" || arg == "--segment-samples" ||
               arg == "--overlap-samples") {
      if (i + 1 >= argc) throw HostError(arg + " needs a value (see zoo_host --help)", 2);
      const std::string value = argv[++i];
      if (arg == "--segment") options.segment.seconds = parse_seconds(arg, value);
      if (arg == "--overlap") options.segment.overlap_fraction = parse_fraction(arg, value);
      if (arg == "--segment-samples") options.segment.samples = parse_count(arg, value);
      if (arg == "--overlap-samples") options.segment.overlap_samples = parse_count(arg, value);
      if (arg == "--batch-size") options.batch_size = parse_count(arg, value);
    } else if (arg.rfind("--", 0) == 0) {
      throw HostError("unknown option " + arg + " (see zoo_host --help)", 2);
    } else {
      positional.push_back(arg);
    }
  }
  if (positional.size() != 3) {
    throw HostError("expected MODEL, INPUT.wav and OUTPUT_DIR, got " + std::to_string(positional.size()) +
                        " argument(s) (see zoo_host --help)",
                    2);
  }
  options.model_path = positional[0];
  options.input_path = positional[1];
  options.output_dir = positional[2];
  if (options.batch_size < 1) throw HostError("--batch-size must be at least 1", 2);
  for (const auto& path : {options.model_path, options.input_path}) {
    if (!fs::is_regular_file(path)) throw HostError(path + ": no such file", 2);
  }
  if (ends_with(options.model_path, ".onnx")) {
    throw HostError(options.model_path + ": ONNX is not a host format (zoo_host runs .ts.pt and .pt2 files); "
                        "separate with it through ONNX Runtime: zoo separate --artifact " + options.model_path +
                        " INPUT, or export a host format: zoo export MODEL [--format aoti]",
                    2);
  }
  return options;
}

// One line of a libtorch error for the user: the TorchScript interpreter puts the error itself last, after its
// traceback; other errors put it first.
std::string one_line(const std::string& message) {
  std::vector<std::string> lines;
  std::istringstream text(message);
  for (std::string line; std::getline(text, line);) {
    if (line.find_first_not_of(" \t") != std::string::npos) lines.push_back(line);
  }
  if (lines.empty()) return "unknown error";
  const bool interpreter = message.find("TorchScript interpreter") != std::string::npos;
  return interpreter ? lines.back() : lines.front();
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
  const Geometry geometry = resolve_geometry(options.segment, separator);
  const int64_t segment = geometry.segment, overlap = geometry.overlap;
  const int64_t samples = audio.samples.size(-1);
  const double startup = seconds_since(started);

  // timed: moving the mixture to the device, separating, and the stems back in host memory
  c10::InferenceMode inference;
  const auto began = std::chrono::steady_clock::now();
  const double cpu_began = cpu_seconds();
  at::Tensor stems;
  try {
    stems = separator.separate(audio.samples.to(separator.device), segment, overlap, options.batch_size).to(at::kCPU);
  } catch (const c10::OutOfMemoryError&) {
    throw HostError("out of memory while separating; use a shorter --segment or a smaller --batch-size", 1);
  } catch (const std::bad_alloc&) {
    throw HostError("out of memory while separating; use a shorter --segment or a smaller --batch-size", 1);
  } catch (const c10::Error& error) {
    throw HostError("separation failed: " + one_line(error.what_without_backtrace()), 1);
  }
  const double cpu = cpu_seconds() - cpu_began;
  const double seconds = seconds_since(began);
  const double duration = static_cast<double>(samples) / audio.sample_rate;

  fs::create_directories(options.output_dir);
  for (size_t i = 0; i < separator.stems.size(); ++i) {
    const auto path = (fs::path(options.output_dir) / (separator.stems[i] + ".wav")).string();
    write_wav(path, stems[0][static_cast<int64_t>(i)], audio.sample_rate);
    std::cout << "wrote " << path << "\n";
  }
  std::ostringstream segment_seconds;
  segment_seconds << std::fixed << std::setprecision(3) << static_cast<double>(segment) / separator.sample_rate;
  std::cout << "format: " << (aoti ? "aoti" : "torchscript") << " on " << separator.device << ", segment " << segment
            << " samples (" << segment_seconds.str() << " s), overlap " << overlap << " samples, batch size "
            << options.batch_size << "\n";
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
    std::cerr << "error: " << one_line(error.what_without_backtrace()) << "\n";
    return 1;
  } catch (const std::exception& error) {
    std::cerr << "error: " << one_line(error.what()) << "\n";
    return 1;
  }
}
