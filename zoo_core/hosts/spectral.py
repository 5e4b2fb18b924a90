"""The waveform side of a core-only artifact (ONNX, AOTInductor), written once from the file's metadata alone.

A core maps the image ``[B, channels, bins, T]`` to one image per model stem ``[B, stems, channels, bins, T]``.
`SpectralHost` does everything around it with plain torch ops: pad (the `SeparationModel.padding` rule), STFT
(periodic Hann, reflect padding when centred), keep the lowest ``bins`` bins as complex-as-channels
``[Re L, Im L, Re R, Im R]`` or as magnitudes, run the core, give magnitudes the mixture's phase back, zero-fill
the bins above, inverse STFT (overlap-add over the summed squared window, as `zoo_core.framing.ISTFT`), crop.

It is the Python twin of examples/cpp_host/spectral_host.cpp and deliberately imports nothing of svs-zoo's
model code: what the file says is all it knows, so a file that runs here runs in any host that follows the
contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ZooError

_TINY = float(torch.finfo(torch.float32).tiny)


@dataclass(frozen=True)
class FramingContract:
    """What an exported core expects around it, read from its ``zoo.json``."""

    sample_rate: int
    n_fft: int
    hop_length: int
    center: bool
    frames: int  # frames of the training window
    bins: int  # the lowest bins the core sees
    representation: str  # "cac" or "magnitude"
    time_factor: int  # the core takes frame counts that are multiples of this
    model_stems: tuple[str, ...]

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any], path: str) -> "FramingContract":
        try:
            stft = metadata["stft"]
            contract = cls(
                sample_rate=int(metadata["sample_rate"]),
                n_fft=int(stft["n_fft"]),
                hop_length=int(stft["hop_length"]),
                center=bool(stft["center"]),
                frames=int(stft["frames"]),
                bins=int(stft["bins"]),
                representation=str(metadata["representation"]),
                time_factor=int(metadata["time_factor"]),
                model_stems=tuple(metadata["model_stems"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ZooError(f"{path}: its metadata lacks the framing contract ({exc!s}); export it again") from None
        if contract.representation not in ("cac", "magnitude"):
            raise ZooError(f"{path}: unknown representation {contract.representation!r} in its metadata")
        return contract

    @property
    def total_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def image_channels(self) -> int:
        return 4 if self.representation == "cac" else 2

    def padding(self, samples: int) -> tuple[int, int]:
        """(left, right) zeros so that the frame count is a multiple of ``time_factor`` and covers every sample
        (the rule of `SeparationModel.padding`)."""
        hop, n_fft, factor = self.hop_length, self.n_fft, self.time_factor
        if self.center:
            left = 0
            needed = (samples + hop - 1) // hop + 1
        else:
            left = n_fft - hop  # the first sample sits under a full window overlap
            needed = (max(samples + 2 * left - n_fft, 0) + hop - 1) // hop + 1
        shortest = n_fft // (2 * hop) + 2 if self.center else 1  # more samples than a centred STFT reflects
        frames = max(needed, factor, shortest)
        frames = (frames + factor - 1) // factor * factor
        total = hop * (frames - 1) if self.center else n_fft + hop * (frames - 1)
        return left, total - samples - left

    def training_segment(self) -> int:
        """The longest input whose padded STFT has exactly the training window's frames."""
        span = self.hop_length * (self.frames - 1) + (0 if self.center else self.n_fft)
        return span - 2 * self.padding(1)[0]


class SpectralHost(nn.Module):
    """``[B, 2, N]`` mixture → ``[B, model_stems, 2, N]`` estimates through ``core`` (image in, images out)."""

    def __init__(self, core: Callable[[Tensor], Tensor], contract: FramingContract):
        super().__init__()
        self.core = core
        self.contract = contract
        self.register_buffer("window", torch.hann_window(contract.n_fft), persistent=False)

    def forward(self, mixture: Tensor) -> Tensor:
        contract = self.contract
        samples = mixture.shape[-1]
        left, right = contract.padding(samples)
        padded = F.pad(mixture, (left, right))
        spec = self.stft(padded)  # [B, C, total_bins, T] complex
        batch, channels, total_bins, frames = spec.shape
        kept = spec[:, :, : contract.bins]
        if contract.representation == "magnitude":
            image = kept.abs()
        else:  # [B, C, bins, T] complex -> [B, 2C, bins, T] as [Re L, Im L, Re R, Im R]
            image = torch.view_as_real(kept).permute(0, 1, 4, 2, 3).reshape(batch, 2 * channels, contract.bins, frames)
        out = self.core(image.contiguous())
        stems = len(contract.model_stems)
        expected = (batch, stems, image.shape[1], contract.bins, frames)
        if tuple(out.shape) != expected:
            raise ZooError(f"the exported core returned {list(out.shape)}, its metadata promises {list(expected)}", exit_code=1)
        if contract.representation == "magnitude":
            estimate = torch.polar(out, torch.angle(kept).unsqueeze(1).expand(out.shape))
        else:
            pairs = out.reshape(batch, stems, channels, 2, contract.bins, frames).permute(0, 1, 2, 4, 5, 3)
            estimate = torch.view_as_complex(pairs.contiguous())
        if contract.bins < total_bins:  # the bins the core does not see come back as zeros
            zeros = estimate.new_zeros(batch, stems, channels, total_bins - contract.bins, frames)
            estimate = torch.cat((estimate, zeros), 3)
        waves = self.istft(estimate.reshape(batch * stems, channels, total_bins, frames), padded.shape[-1])
        return waves[..., left : left + samples].reshape(batch, stems, channels, samples)

    def stft(self, waveform: Tensor) -> Tensor:
        batch, channels, samples = waveform.shape
        contract = self.contract
        spec = torch.stft(
            waveform.reshape(batch * channels, samples),
            contract.n_fft,
            contract.hop_length,
            window=self.window.to(waveform.dtype),
            center=contract.center,
            pad_mode="reflect",
            return_complex=True,
        )
        return spec.reshape(batch, channels, spec.shape[-2], spec.shape[-1])

    def istft(self, spec: Tensor, length: int) -> Tensor:
        """Weighted overlap-add divided by the summed squared window where it exceeds float32's tiny (this also
        inverts uncentred frames, whose outermost samples no window covers)."""
        batch, channels, bins, frames = spec.shape
        n_fft, hop = self.contract.n_fft, self.contract.hop_length
        window = self.window.to(spec.real.dtype)
        # torch.istft's operations in its order ([B*C, T, n_fft] frames, overlap-add by unfold's adjoint)
        chunks = torch.fft.irfft(spec.reshape(batch * channels, bins, frames).transpose(1, 2), n=n_fft, dim=-1) * window
        full = n_fft + hop * (frames - 1)
        signal = torch.ops.aten.unfold_backward(chunks, [batch * channels, full], 1, n_fft, hop)
        squares = window.pow(2).expand(1, frames, n_fft)
        norm = torch.ops.aten.unfold_backward(squares, [1, full], 1, n_fft, hop).reshape(full)
        start = n_fft // 2 if self.contract.center else 0
        signal, norm = signal[:, start : start + length], norm[start : start + length]
        signal = signal / torch.where(norm > _TINY, norm, torch.ones_like(norm))
        if signal.shape[-1] < length:
            signal = F.pad(signal, (0, length - signal.shape[-1]))
        return signal.reshape(batch, channels, length)
