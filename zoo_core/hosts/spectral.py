"""The waveform side of a core-only artifact (ONNX, AOTInductor), built from the file's metadata alone.

A core maps the image ``[B, channels, bins, T]`` to one image per model stem ``[B, stems, channels, bins, T]``.
`SpectralHost` does everything around it with the zoo's one spectrogram pipeline (`zoo_core.framing`: the
padding rule, STFT, complex-as-channels or magnitude framing and their inverses, inverse STFT), configured by
the file's ``zoo.json`` (`FramingContract`); it imports no model, registry or plugin code. That the contract
says enough for any host is checked against an independent numpy definition (tests/test_hosts.py) and by the
C++ host (examples/cpp_host/spectral_host.cpp).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ZooError
from ..framing import ISTFT, REPRESENTATIONS, STFT, frame_padding, make_framing


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
        if contract.representation not in REPRESENTATIONS:
            raise ZooError(f"{path}: unknown representation {contract.representation!r} in its metadata")
        return contract

    @property
    def total_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def image_channels(self) -> int:
        return 4 if self.representation == "cac" else 2

    def padding(self, samples: int) -> tuple[int, int]:
        """(left, right) zeros before the STFT (`zoo_core.framing.frame_padding`, as the model pads)."""
        left, right = frame_padding(samples, self.n_fft, self.hop_length, self.center, self.time_factor)
        return left, right

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
        self.stft = STFT(contract.n_fft, contract.hop_length, contract.center)
        self.istft = ISTFT(contract.n_fft, contract.hop_length, contract.center)
        self.framing = make_framing(contract.representation, contract.bins)

    def forward(self, mixture: Tensor) -> Tensor:
        contract = self.contract
        samples = mixture.shape[-1]
        left, right = contract.padding(samples)
        padded = F.pad(mixture, (left, right))
        spec = self.stft(padded)  # [B, C, total_bins, T] complex
        batch, channels, total_bins, frames = spec.shape
        image = self.framing(spec)
        out = self.core(image.contiguous())
        stems = len(contract.model_stems)
        expected = (batch, stems, image.shape[1], contract.bins, frames)
        if tuple(out.shape) != expected:
            raise ZooError(f"the exported core returned {list(out.shape)}, its metadata promises {list(expected)}", exit_code=1)
        estimate = self.framing.inverse(out, total_bins, spec)  # [B, stems, C, total_bins, T] complex
        waves = self.istft(estimate.reshape(batch * stems, channels, total_bins, frames), padded.shape[-1])
        return waves[..., left : left + samples].reshape(batch, stems, channels, samples)
