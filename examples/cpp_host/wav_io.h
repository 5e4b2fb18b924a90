// Stereo WAV files in and out, as float tensors shaped [1, 2, samples]; no audio library needed, so the host
// builds wherever libtorch does (the GPU image has no libsndfile).
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

struct Audio {
  at::Tensor samples;  // [1, channels, frames] float32, contiguous
  int sample_rate;
};

// Reads RIFF/WAVE integer PCM (8, 16, 24, 32 bit) and IEEE float (32, 64 bit), plain or WAVE_FORMAT_EXTENSIBLE,
// scaled to [-1, 1) like libsndfile. Throws HostError (exit 2) for a missing, unreadable or unsupported file and
// for anything but two channels.
Audio read_stereo(const std::string& path);

// Writes [channels, frames] as a 32-bit float WAV (no precision lost on the way out), under a temporary name
// renamed into place once complete: a reader never sees half a file.
void write_wav(const std::string& path, const at::Tensor& channels_by_frames, int sample_rate);
