#include "wav_io.h"

#include <sndfile.h>

#include <vector>

#include "host_error.h"

Audio read_stereo(const std::string& path) {
  SF_INFO info{};
  SNDFILE* file = sf_open(path.c_str(), SFM_READ, &info);
  if (file == nullptr) {
    throw HostError("cannot read " + path + ": " + sf_strerror(nullptr), 2);
  }
  if (info.channels != 2) {
    sf_close(file);
    throw HostError(path + " has " + std::to_string(info.channels) +
                        " channel(s); the models separate stereo mixtures (convert it to stereo first)",
                    2);
  }
  std::vector<float> interleaved(static_cast<size_t>(info.frames) * 2);
  const sf_count_t read = sf_readf_float(file, interleaved.data(), info.frames);
  sf_close(file);
  if (read != info.frames) {
    throw HostError("cannot read all of " + path + " (truncated file?)", 2);
  }
  // interleaved [frames, 2] -> [1, 2, frames]
  auto samples = torch::from_blob(interleaved.data(), {info.frames, 2}, torch::kFloat32).t().unsqueeze(0).clone();
  return {samples, info.samplerate};
}

void write_wav(const std::string& path, const torch::Tensor& channels_by_frames, int sample_rate) {
  auto interleaved = channels_by_frames.to(torch::kCPU, torch::kFloat32).t().contiguous();  // [frames, channels]
  SF_INFO info{};
  info.samplerate = sample_rate;
  info.channels = static_cast<int>(interleaved.size(1));
  info.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
  SNDFILE* file = sf_open(path.c_str(), SFM_WRITE, &info);
  if (file == nullptr) {
    throw HostError("cannot write " + path + ": " + sf_strerror(nullptr), 1);
  }
  const sf_count_t frames = interleaved.size(0);
  const sf_count_t written = sf_writef_float(file, interleaved.data_ptr<float>(), frames);
  sf_close(file);
  if (written != frames) {
    throw HostError("cannot write all of " + path + " (disk full?)", 1);
  }
}
