#include "wav_io.h"

#include <ATen/ops/empty.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <vector>

#include "host_error.h"

namespace {

constexpr uint16_t kPcm = 1;
constexpr uint16_t kIeeeFloat = 3;
constexpr uint16_t kExtensible = 0xFFFE;
constexpr int64_t kBlockFrames = 1 << 16;  // frames converted per read: bounded memory for any file length

uint16_t u16(const unsigned char* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t u32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}

struct Format {
  uint16_t tag = 0;
  int channels = 0;
  int sample_rate = 0;
  int block_align = 0;
  int bits = 0;
};

bool read_exact(std::ifstream& file, unsigned char* into, int64_t count) {
  file.read(reinterpret_cast<char*>(into), count);
  return file.gcount() == count;
}

// One sample as float in [-1, 1): integer PCM scaled by 2^(bits-1), 8-bit PCM unsigned (as libsndfile reads it).
float decode(const unsigned char* p, const Format& format) {
  if (format.tag == kIeeeFloat) {
    if (format.bits == 32) {
      const uint32_t bits = u32(p);
      float value;
      std::memcpy(&value, &bits, sizeof value);
      return value;
    }
    const uint64_t bits = static_cast<uint64_t>(u32(p)) | (static_cast<uint64_t>(u32(p + 4)) << 32);
    double value;
    std::memcpy(&value, &bits, sizeof value);
    return static_cast<float>(value);
  }
  switch (format.bits) {
    case 8:
      return (static_cast<int>(p[0]) - 128) / 128.0f;
    case 16:
      return static_cast<int16_t>(u16(p)) / 32768.0f;
    case 24: {
      const int32_t value = static_cast<int32_t>((static_cast<uint32_t>(p[0]) << 8) | (static_cast<uint32_t>(p[1]) << 16) |
                                                 (static_cast<uint32_t>(p[2]) << 24)) >> 8;
      return static_cast<float>(value / 8388608.0);
    }
    default:
      return static_cast<float>(static_cast<int32_t>(u32(p)) / 2147483648.0);
  }
}

void check_supported(const Format& format, const std::string& path) {
  const bool pcm = format.tag == kPcm && (format.bits == 8 || format.bits == 16 || format.bits == 24 || format.bits == 32);
  const bool floating = format.tag == kIeeeFloat && (format.bits == 32 || format.bits == 64);
  if (!pcm && !floating) {
    throw HostError(path + ": unsupported WAV encoding (format " + std::to_string(format.tag) + ", " +
                        std::to_string(format.bits) + " bits); use 8-32-bit PCM or 32/64-bit float",
                    2);
  }
  if (format.channels != 2) {
    throw HostError(path + " has " + std::to_string(format.channels) +
                        " channel(s); the models separate stereo mixtures (convert it to stereo first)",
                    2);
  }
  if (format.sample_rate <= 0 || format.block_align != format.channels * format.bits / 8) {
    throw HostError(path + ": inconsistent WAV header (corrupted file?)", 2);
  }
}

void put16(std::vector<unsigned char>& out, uint32_t value) {
  out.push_back(static_cast<unsigned char>(value & 0xFF));
  out.push_back(static_cast<unsigned char>((value >> 8) & 0xFF));
}
void put32(std::vector<unsigned char>& out, uint32_t value) {
  put16(out, value & 0xFFFF);
  put16(out, value >> 16);
}
void put_tag(std::vector<unsigned char>& out, const char* tag) { out.insert(out.end(), tag, tag + 4); }

}  // namespace

Audio read_stereo(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw HostError("cannot read " + path, 2);
  file.seekg(0, std::ios::end);
  const int64_t file_size = file.tellg();
  file.seekg(0);
  unsigned char riff[12];
  if (!read_exact(file, riff, 12) || std::memcmp(riff, "RIFF", 4) != 0 || std::memcmp(riff + 8, "WAVE", 4) != 0) {
    throw HostError("cannot read " + path + ": not a WAV (RIFF/WAVE) file", 2);
  }
  Format format;
  bool have_format = false;
  int64_t data_bytes = -1;
  unsigned char header[8];
  while (read_exact(file, header, 8)) {
    const uint32_t size = u32(header + 4);
    if (std::memcmp(header, "fmt ", 4) == 0) {
      std::vector<unsigned char> body(size);
      if (size < 16 || !read_exact(file, body.data(), size)) throw HostError(path + ": truncated WAV header", 2);
      format.tag = u16(body.data());
      format.channels = u16(body.data() + 2);
      format.sample_rate = static_cast<int>(u32(body.data() + 4));
      format.block_align = u16(body.data() + 12);
      format.bits = u16(body.data() + 14);
      if (format.tag == kExtensible && size >= 26) format.tag = u16(body.data() + 24);  // the sub-format GUID's first field
      if (size & 1) file.seekg(1, std::ios::cur);
      have_format = true;
    } else if (std::memcmp(header, "data", 4) == 0) {
      // a streamed WAV may declare 0 or 0xFFFFFFFF: the samples then run to the end of the file
      const int64_t remaining = file_size - static_cast<int64_t>(file.tellg());
      data_bytes = (size == 0 || size == 0xFFFFFFFFu) ? remaining : static_cast<int64_t>(size);
      break;
    } else {
      file.seekg(static_cast<int64_t>(size) + (size & 1), std::ios::cur);
    }
  }
  if (!have_format || data_bytes < 0) throw HostError("cannot read " + path + ": no fmt or data chunk", 2);
  check_supported(format, path);

  const int64_t frames = data_bytes / format.block_align;
  const int bytes_per_sample = format.bits / 8;
  auto samples = at::empty({1, 2, frames}, at::kFloat);
  float* left = samples.data_ptr<float>();
  float* right = left + frames;
  std::vector<unsigned char> block(static_cast<size_t>(kBlockFrames * format.block_align));
  for (int64_t done = 0; done < frames;) {
    const int64_t count = std::min(kBlockFrames, frames - done);
    if (!read_exact(file, block.data(), count * format.block_align)) {
      throw HostError("cannot read all of " + path + " (truncated file?)", 2);
    }
    for (int64_t i = 0; i < count; ++i) {
      const unsigned char* frame = block.data() + i * format.block_align;
      left[done + i] = decode(frame, format);
      right[done + i] = decode(frame + bytes_per_sample, format);
    }
    done += count;
  }
  return {samples, format.sample_rate};
}

void write_wav(const std::string& path, const at::Tensor& channels_by_frames, int sample_rate) {
  const auto audio = channels_by_frames.to(at::kCPU, at::kFloat).contiguous();
  const int64_t channels = audio.size(0), frames = audio.size(1);
  const int64_t data_bytes = frames * channels * 4;
  const int64_t header_bytes = 12 + 8 + 18 + 8 + 4 + 8;
  if (data_bytes + header_bytes - 8 > std::numeric_limits<uint32_t>::max()) {
    throw HostError("cannot write " + path + ": more than 4 GiB of samples, beyond the WAV format", 1);
  }
  std::vector<unsigned char> header;
  put_tag(header, "RIFF");
  put32(header, static_cast<uint32_t>(data_bytes + header_bytes - 8));
  put_tag(header, "WAVE");
  put_tag(header, "fmt ");
  put32(header, 18);
  put16(header, kIeeeFloat);
  put16(header, static_cast<uint32_t>(channels));
  put32(header, static_cast<uint32_t>(sample_rate));
  put32(header, static_cast<uint32_t>(sample_rate * channels * 4));
  put16(header, static_cast<uint32_t>(channels * 4));
  put16(header, 32);
  put16(header, 0);  // no extension
  put_tag(header, "fact");  // required for non-PCM encodings
  put32(header, 4);
  put32(header, static_cast<uint32_t>(frames));
  put_tag(header, "data");
  put32(header, static_cast<uint32_t>(data_bytes));

  const std::filesystem::path target(path);
  const auto temporary = target.parent_path() / ("." + target.filename().string() + ".tmp-" + std::to_string(getpid()));
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(header.data()), static_cast<std::streamsize>(header.size()));
    const float* data = audio.data_ptr<float>();
    std::vector<float> interleaved(static_cast<size_t>(kBlockFrames * channels));
    for (int64_t done = 0; done < frames && out;) {
      const int64_t count = std::min(kBlockFrames, frames - done);
      for (int64_t i = 0; i < count; ++i) {
        for (int64_t c = 0; c < channels; ++c) interleaved[i * channels + c] = data[c * frames + done + i];
      }
      out.write(reinterpret_cast<const char*>(interleaved.data()), static_cast<std::streamsize>(count * channels * 4));
      done += count;
    }
    out.close();
    if (!out) {
      std::error_code ignored;
      std::filesystem::remove(temporary, ignored);
      throw HostError("cannot write all of " + path + " (disk full, or no permission?)", 1);
    }
  }
  std::filesystem::rename(temporary, target);
}
