"""`SeparationModel`: waveform in, stems out, with the STFT, framing and padding inside.

``model(mixture)`` takes ``[batch, 2, samples]`` float at ``model.sample_rate`` and returns
``[batch, stems, 2, samples]`` (one stem, the target, for the paper's models). Any number of samples works:
the model pads to a length the U-Net accepts and crops back. It is the one module that Python separation,
training and the TorchScript exporter all use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import BlockType
from .errors import ConfigError
from .framing import ISTFT, STFT, ComplexAsChannels, MagnitudeFraming
from .unet import UNet, UNetConfig

REPRESENTATIONS = ("cac", "magnitude")
ESTIMATIONS = ("mapping", "masking")


@dataclass(frozen=True)
class StftSettings:
    n_fft: int = 2048
    hop_length: int = 1024
    frames: int = 128  # frames per training window
    center: bool = True
    sample_rate: int = 44100

    def validate(self) -> None:
        n = self.n_fft
        if not isinstance(n, int) or n < 16 or n & (n - 1):
            raise ConfigError(f"n_fft must be a power of two (>= 16), got {n}")
        if not isinstance(self.hop_length, int) or not 0 < self.hop_length <= n:
            raise ConfigError(f"hop_length must be in 1..n_fft ({n}), got {self.hop_length}")
        if not isinstance(self.sample_rate, int) or self.sample_rate <= 0:
            raise ConfigError(f"sample_rate must be a positive integer, got {self.sample_rate}")

    @property
    def window_samples(self) -> int:
        """Samples of one training window of ``frames`` frames."""
        if self.center:
            return self.hop_length * (self.frames - 1)
        return self.n_fft + self.hop_length * (self.frames - 1)


class SeparationModel(nn.Module):
    def __init__(
        self,
        unet_config: UNetConfig,
        block_type: BlockType,
        stft: StftSettings,
        representation: str = "cac",
        estimation: str = "mapping",
        targets: tuple[str, ...] = ("vocals",),
        audio_channels: int = 2,
    ):
        super().__init__()
        stft.validate()
        if representation not in REPRESENTATIONS:
            raise ConfigError(f"representation must be one of {REPRESENTATIONS}, got {representation!r}")
        if estimation not in ESTIMATIONS:
            raise ConfigError(f"estimation must be one of {ESTIMATIONS}, got {estimation!r}")
        if unet_config.bins != stft.n_fft // 2:
            raise ConfigError(f"U-Net bins {unet_config.bins} do not match n_fft {stft.n_fft} (need n_fft/2)")
        if len(targets) != 1:
            raise ConfigError("the paper's models estimate exactly one target")
        self.settings = stft
        self.representation = representation
        self.estimation = estimation
        self.targets: List[str] = list(targets)
        self.sample_rate: int = stft.sample_rate
        self.n_fft: int = stft.n_fft
        self.hop_length: int = stft.hop_length
        self.center: bool = stft.center
        self.time_factor: int = unet_config.time_factor
        self.masking: bool = estimation == "masking"
        self.stft = STFT(stft.n_fft, stft.hop_length, stft.center)
        self.istft = ISTFT(stft.n_fft, stft.hop_length, stft.center)
        self.framing = ComplexAsChannels() if representation == "cac" else MagnitudeFraming()
        self.unet = UNet(unet_config, block_type)

    def estimate_spectrogram(self, mixture_spec: Tensor) -> Tensor:
        """Complex mixture STFT ``[B, 2, F+1, T]`` → complex target STFT (T a multiple of ``time_factor``)."""
        image = self.framing(mixture_spec)
        out = self.unet(image)
        if self.masking:
            out = out * image
        return self.framing.inverse(out, mixture_spec)

    def padding(self, samples: int) -> List[int]:
        """[left, right] zero padding that gives a frame count the U-Net accepts and covers every sample."""
        hop = self.hop_length
        if self.center:
            left = 0
            needed = (samples + hop - 1) // hop + 1  # frames so that hop * (frames - 1) >= samples
        else:
            # no centring: lead with n_fft - hop zeros so the first sample is under a full window overlap
            left = self.n_fft - hop
            span = samples + 2 * left - self.n_fft
            needed = (max(span, 0) + hop - 1) // hop + 1
        frames = max(needed, self.time_factor)
        frames = (frames + self.time_factor - 1) // self.time_factor * self.time_factor
        if self.center:
            total = hop * (frames - 1)
        else:
            total = self.n_fft + hop * (frames - 1)
        return [left, total - samples - left]

    def forward(self, mixture: Tensor) -> Tensor:
        samples = mixture.shape[-1]
        pad = self.padding(samples)
        padded = F.pad(mixture, pad)
        estimate = self.estimate_spectrogram(self.stft(padded))
        waveform = self.istft(estimate, padded.shape[-1])
        return waveform[..., pad[0] : pad[0] + samples].unsqueeze(1)
