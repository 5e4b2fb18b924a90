"""Spectrogram framing: waveform ↔ complex STFT ↔ the real-valued image the U-Net sees.

Small modules with one job each, TorchScript-clean, windows held as non-persistent buffers (they move with
``.to(device)`` and never reach a weights file):

- `STFT` / `ISTFT`: stereo waveform ``[B, C, N]`` ↔ complex ``[B, C, n_fft/2+1, frames]``.
- `ComplexAsChannels`: complex ``[B, 2, F+1, T]`` ↔ real ``[B, 4, F+1, T]`` ordered
  ``[Re L, Im L, Re R, Im R]`` (the paper's CaC; the order of the original ISMIR code).
- `MagnitudeFraming`: ``|X|`` as ``[B, 2, F+1, T]``; the estimate gets the mixture's phase back.

The inverse STFT is a weighted overlap-add divided by the summed squared window wherever that sum is above
the smallest normal float, as librosa does. Unlike ``torch.istft`` it therefore also inverts
``center=False`` frames, whose outermost samples no window covers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_TINY = float(torch.finfo(torch.float32).tiny)


class STFT(nn.Module):
    def __init__(self, n_fft: int, hop_length: int, center: bool):
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.center = center
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, waveform: Tensor) -> Tensor:
        batch, channels, samples = waveform.shape
        spec = torch.stft(
            waveform.reshape(batch * channels, samples),
            self.n_fft,
            self.hop_length,
            window=self.window.to(waveform.dtype),
            center=self.center,
            pad_mode="reflect",
            return_complex=True,
        )
        return spec.reshape(batch, channels, spec.shape[-2], spec.shape[-1])


class ISTFT(nn.Module):
    def __init__(self, n_fft: int, hop_length: int, center: bool):
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.center = center
        self.tiny = _TINY
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, spec: Tensor, length: int) -> Tensor:
        batch, channels, _, frames = spec.shape
        window = self.window.to(spec.real.dtype)
        # [B*C, n_fft, T]: windowed time-domain frames, summed back with fold (overlap-add)
        chunks = torch.fft.irfft(spec.reshape(batch * channels, -1, frames), n=self.n_fft, dim=1)
        chunks = chunks * window.unsqueeze(-1)
        full = self.n_fft + self.hop_length * (frames - 1)
        signal = F.fold(chunks, (1, full), (1, self.n_fft), stride=(1, self.hop_length)).reshape(batch * channels, full)
        squares = (window * window).unsqueeze(-1).expand(self.n_fft, frames).unsqueeze(0)
        norm = F.fold(squares, (1, full), (1, self.n_fft), stride=(1, self.hop_length)).reshape(full)
        signal = torch.where(norm > self.tiny, signal / norm.clamp_min(self.tiny), signal)
        start = self.n_fft // 2 if self.center else 0
        signal = signal[:, start : start + length]
        if signal.shape[-1] < length:
            signal = F.pad(signal, (0, length - signal.shape[-1]))
        return signal.reshape(batch, channels, length)


class ComplexAsChannels(nn.Module):
    """Complex stereo spectrogram ↔ 4 real channels [Re L, Im L, Re R, Im R]."""

    channels_per_audio_channel: int = 2

    def forward(self, spec: Tensor) -> Tensor:
        batch, channels, bins, frames = spec.shape
        # view_as_real gives [..., bins, frames, 2]; move (re, im) next to the audio channel
        return torch.view_as_real(spec).permute(0, 1, 4, 2, 3).reshape(batch, channels * 2, bins, frames)

    def inverse(self, image: Tensor, mixture: Tensor) -> Tensor:
        batch, doubled, bins, frames = image.shape
        pairs = image.reshape(batch, doubled // 2, 2, bins, frames).permute(0, 1, 3, 4, 2)
        return torch.view_as_complex(pairs.contiguous())


class MagnitudeFraming(nn.Module):
    """Complex stereo spectrogram → magnitudes; the inverse re-uses the mixture's phase."""

    channels_per_audio_channel: int = 1

    def forward(self, spec: Tensor) -> Tensor:
        return spec.abs()

    def inverse(self, image: Tensor, mixture: Tensor) -> Tensor:
        return torch.polar(image, torch.angle(mixture))
