"""Spectrogram framing: waveform ↔ complex STFT ↔ the real-valued image a network sees.

Small modules with one job each, TorchScript-clean, windows held as non-persistent buffers (they move with
``.to(device)`` and never reach a weights file):

- `STFT` / `ISTFT`: waveform ``[B, C, N]`` ↔ complex ``[B, C, n_fft/2+1, frames]``.
- `ComplexAsChannels`: complex ``[B, C, F+1, T]`` → real ``[B, 2C, bins, T]`` ordered ``[Re L, Im L, Re R, Im R]``
  (complex-as-channels, in the order the released checkpoints of the built-in families use), keeping the lowest
  ``bins`` bins; the inverse zero-fills the bins above.
- `MagnitudeFraming`: ``|X|`` as ``[B, C, bins, T]``; the estimate gets the mixture's phase back.

Both inverses take the estimate with a stems axis, ``[B, stems, channels, bins, T]``, and return complex
``[B, stems, C, F+1, T]``.

The inverse STFT is a weighted overlap-add divided by the summed squared window wherever that sum is above
the smallest normal float, as librosa does. Unlike ``torch.istft`` it therefore also inverts
``center=False`` frames, whose outermost samples no window covers; centred frames give ``torch.istft``'s
result bit for bit (the same operations in the same order), as the reference MDX23C code inverts them.
"""

from __future__ import annotations

from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

REPRESENTATIONS = ("cac", "magnitude")
ESTIMATIONS = ("mapping", "masking")

_TINY = float(torch.finfo(torch.float32).tiny)


class _Transform(nn.Module):
    """What both directions share: the settings and a periodic Hann window that is never a weight."""

    def __init__(self, n_fft: int, hop_length: int, center: bool):
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.center = center
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)


class STFT(_Transform):
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


class ISTFT(_Transform):
    def __init__(self, n_fft: int, hop_length: int, center: bool):
        super().__init__(n_fft, hop_length, center)
        self.tiny = _TINY

    def forward(self, spec: Tensor, length: int) -> Tensor:
        batch, channels, bins, frames = spec.shape
        window = self.window.to(spec.real.dtype)
        # the operations of torch.istft, in its layout and summation order, so that a centred inverse equals it
        # bit for bit: [B*C, T, n_fft] windowed frames, overlap-added by unfold's adjoint (F.fold sums in another
        # order, about 1e-6 away)
        chunks = torch.fft.irfft(spec.reshape(batch * channels, bins, frames).transpose(1, 2), n=self.n_fft, dim=-1)
        chunks = chunks * window
        full = self.n_fft + self.hop_length * (frames - 1)
        signal = torch.ops.aten.unfold_backward(chunks, [batch * channels, full], 1, self.n_fft, self.hop_length)
        squares = window.pow(2).expand(1, frames, self.n_fft)
        norm = torch.ops.aten.unfold_backward(squares, [1, full], 1, self.n_fft, self.hop_length).reshape(full)
        start = self.n_fft // 2 if self.center else 0
        signal, norm = signal[:, start : start + length], norm[start : start + length]
        # divide where the window covers (elsewhere by 1: unchanged), in one pass over the signal
        signal = signal / torch.where(norm > self.tiny, norm, torch.ones_like(norm))
        if signal.shape[-1] < length:
            signal = F.pad(signal, (0, length - signal.shape[-1]))
        return signal.reshape(batch, channels, length)


def _zero_fill(spec: Tensor, total_bins: int) -> Tensor:
    """``[..., bins, T]`` → ``[..., total_bins, T]`` with zeros above the kept bins."""
    missing = total_bins - spec.shape[-2]
    if missing == 0:
        return spec
    return torch.cat((spec, spec.new_zeros(spec.shape[:-2] + (missing, spec.shape[-1]))), -2)


class ComplexAsChannels(nn.Module):
    """Complex spectrogram ↔ real channels [Re L, Im L, Re R, Im R], the lowest ``bins`` bins (None: all)."""

    def __init__(self, bins: Optional[int] = None):
        super().__init__()
        self.bins: int = -1 if bins is None else bins

    def forward(self, spec: Tensor) -> Tensor:
        batch, channels, total_bins, frames = spec.shape
        kept = total_bins if self.bins < 0 else self.bins
        # view_as_real gives [..., bins, frames, 2]; move (re, im) next to the audio channel
        image = torch.view_as_real(spec[:, :, :kept]).permute(0, 1, 4, 2, 3)
        return image.reshape(batch, channels * 2, kept, frames)

    def inverse(self, image: Tensor, total_bins: int, mixture: Optional[Tensor] = None) -> Tensor:
        """``[B, S, 2C, bins, T]`` estimate → complex ``[B, S, C, total_bins, T]``; ``mixture`` is not needed."""
        batch, stems, doubled, bins, frames = image.shape
        pairs = image.reshape(batch, stems, doubled // 2, 2, bins, frames).permute(0, 1, 2, 4, 5, 3)
        return _zero_fill(torch.view_as_complex(pairs.contiguous()), total_bins)


class MagnitudeFraming(nn.Module):
    """Complex spectrogram → magnitudes of the lowest ``bins`` bins; the inverse re-uses the mixture's phase."""

    def __init__(self, bins: Optional[int] = None):
        super().__init__()
        self.bins: int = -1 if bins is None else bins

    def forward(self, spec: Tensor) -> Tensor:
        kept = spec.shape[-2] if self.bins < 0 else self.bins
        return spec[:, :, :kept].abs()

    def inverse(self, image: Tensor, total_bins: int, mixture: Optional[Tensor] = None) -> Tensor:
        """``[B, S, C, bins, T]`` magnitudes → complex ``[B, S, C, total_bins, T]`` with the phase of ``mixture``
        (its complex spectrogram ``[B, C, total_bins, T]``, required)."""
        if mixture is None:
            raise ValueError("a magnitude estimate needs the mixture's complex spectrogram for its phase")
        magnitudes = _zero_fill(image, total_bins)
        phase = torch.angle(mixture).unsqueeze(1).expand(magnitudes.shape)
        return torch.polar(magnitudes, phase)


def frame_padding(samples: int, n_fft: int, hop: int, center: bool, time_factor: int) -> List[int]:
    """[left, right] zeros before the STFT so that the frame count is a multiple of ``time_factor`` (what the
    network accepts) and the frames cover every sample. Without centring the signal leads with ``n_fft - hop``
    zeros, so that the first sample sits under a full window overlap; with centring it spans more samples than the
    STFT reflects at each end (n_fft / 2), which binds only networks that take very few frames (time_factor 1)."""
    if center:
        left = 0
        needed = (samples + hop - 1) // hop + 1  # frames so that hop * (frames - 1) >= samples
        shortest = n_fft // (2 * hop) + 2
    else:
        left = n_fft - hop
        needed = (max(samples + 2 * left - n_fft, 0) + hop - 1) // hop + 1
        shortest = 1
    frames = max(needed, time_factor, shortest)
    frames = (frames + time_factor - 1) // time_factor * time_factor
    total = hop * (frames - 1) if center else n_fft + hop * (frames - 1)
    return [left, total - samples - left]


def make_framing(representation: str, bins: Optional[int] = None) -> nn.Module:
    from .errors import ConfigError

    if representation == "cac":
        return ComplexAsChannels(bins)
    if representation == "magnitude":
        return MagnitudeFraming(bins)
    raise ConfigError(f"representation must be one of {REPRESENTATIONS}, got {representation!r}")


def image_channels(representation: str, audio_channels: int = 2) -> int:
    """Channels of the image a network sees: real and imaginary parts per audio channel, or magnitudes."""
    return audio_channels * (2 if representation == "cac" else 1)
