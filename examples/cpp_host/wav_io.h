// Stereo audio files in and out through libsndfile, as float tensors shaped [1, 2, samples].
#pragma once

#include <torch/torch.h>

#include <string>

struct Audio {
  torch::Tensor samples;  // [1, channels, frames] float32
  int sample_rate;
};

// Throws HostError (exit 2) for a missing or unreadable file and for anything but two channels.
Audio read_stereo(const std::string& path);

// Writes [channels, frames] float32 as a 32-bit float WAV, so no precision is lost on the way out.
void write_wav(const std::string& path, const torch::Tensor& channels_by_frames, int sample_rate);
