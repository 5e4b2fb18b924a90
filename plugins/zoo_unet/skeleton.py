"""The U-Net skeleton of Choi et al. (ISMIR 2020), parametrised by an intermediate block type.

first conv (frequency kernel 2, no padding: F+1 → F bins) + BN + activation
→ n encoder levels: block → (keep for the skip) → down-sampling
→ middle block
→ n decoder levels: up-sampling → concatenate with the kept encoder output → block (2C → C channels)
→ last conv (frequency kernel 2, padding 1: F → F+1 bins, one image per stem) → output activation.

The input is a ``[batch, in_channels, F+1, frames]`` spectrogram image, frequency before time, as the STFT
produces it; blocks see ``[batch, C, frames, bins]``. The output is ``[batch, stems, in_channels, F+1, frames]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn

from zoo_core import BlockContext
from zoo_core.errors import ConfigError
from zoo_core.blocks import SAMPLING_SCHEMES
from .layers import FrequencySampling, TimeFrequencySampling, make_activation


@dataclass(frozen=True)
class UNetConfig:
    """Everything the skeleton needs besides its blocks."""

    n_blocks: int
    in_channels: int  # 4 for complex-as-channels stereo, 2 for magnitude stereo
    bins: int  # F inside the U-Net; the image has F + 1 bins
    frames: int  # frames of the training window (T at level 0)
    channels: int = 24
    sampling: str = "time-frequency"
    # levels whose down-sampling also halves time ("time-frequency" sampling only); None = every level
    time_down_levels: Optional[tuple[int, ...]] = None
    first_activation: str = "relu"
    output_activation: str = "identity"
    stems: int = 1

    @property
    def levels(self) -> int:
        return self.n_blocks // 2

    def time_scaled_levels(self) -> tuple[int, ...]:
        if self.sampling == "frequency":
            return ()
        if self.time_down_levels is None:
            return tuple(range(self.levels))
        return tuple(self.time_down_levels)

    @property
    def time_factor(self) -> int:
        """The number of input frames must be a multiple of this."""
        return 2 ** len(self.time_scaled_levels())

    def validate(self) -> None:
        if not isinstance(self.n_blocks, int) or self.n_blocks < 1 or self.n_blocks % 2 == 0:
            raise ConfigError(f"n_blocks must be a positive odd number (encoder + middle + decoder), got {self.n_blocks}")
        if self.sampling not in SAMPLING_SCHEMES:
            raise ConfigError(f"sampling must be one of {SAMPLING_SCHEMES}, got {self.sampling!r}")
        if self.channels < 1 or self.in_channels < 1:
            raise ConfigError("channels and in_channels must be positive")
        if self.time_down_levels is not None:
            if self.sampling == "frequency":
                raise ConfigError("time_down_levels needs 'time-frequency' sampling; 'frequency' never down-samples time")
            bad = [lvl for lvl in self.time_down_levels if not 0 <= lvl < self.levels]
            if bad or len(set(self.time_down_levels)) != len(self.time_down_levels):
                raise ConfigError(
                    f"time_down_levels {list(self.time_down_levels)} must be distinct levels in 0..{self.levels - 1}"
                )
        if self.bins % (2**self.levels) != 0:
            raise ConfigError(
                f"{self.bins} frequency bins cannot be halved {self.levels} times "
                f"(n_fft/2 must be divisible by 2^{self.levels}; use a power-of-two n_fft)"
            )
        if self.frames < 1 or self.frames % self.time_factor != 0:
            raise ConfigError(
                f"frames={self.frames} must be a positive multiple of {self.time_factor} "
                f"(time is halved at levels {list(self.time_scaled_levels())})"
            )

    def level_shapes(self) -> list[tuple[int, int]]:
        """(frames, bins) at each encoder level, then the middle."""
        shapes = []
        frames, bins = self.frames, self.bins
        scaled = self.time_scaled_levels()
        for level in range(self.levels):
            shapes.append((frames, bins))
            bins //= 2
            if level in scaled:
                frames //= 2
        shapes.append((frames, bins))
        return shapes


class UNet(nn.Module):
    """Spectrogram image → one spectrogram image per stem; see the module docstring.

    ``make_block(ctx: BlockContext) -> nn.Module`` builds the intermediate block for each place.
    """

    def __init__(self, config: UNetConfig, make_block):
        super().__init__()
        config.validate()
        self.config = config
        self.time_factor: int = config.time_factor
        self.stems: int = config.stems
        c = config.channels
        n = config.levels
        scaled = config.time_scaled_levels()
        shapes = config.level_shapes()

        self.first_conv = nn.Sequential(
            nn.Conv2d(config.in_channels, c, kernel_size=(2, 1)),
            nn.BatchNorm2d(c),
            make_activation(config.first_activation),
        )
        self.encoders = nn.ModuleList()
        self.downsampling = nn.ModuleList()
        self.upsampling = nn.ModuleList()
        self.decoders = nn.ModuleList()

        def block(level: int, position: str, in_channels: int) -> nn.Module:
            frames, bins = shapes[level]
            return make_block(BlockContext(in_channels, c, bins, frames, level, position))

        for level in range(n):
            self.encoders.append(block(level, "encoder", c))
            self.downsampling.append(self._sampling("down", level in scaled))
        self.mid_block = block(n, "middle", c)
        for i in range(n):
            level = n - 1 - i  # decoders run from the deepest level back up
            self.upsampling.append(self._sampling("up", level in scaled))
            self.decoders.append(block(level, "decoder", 2 * c))
        out_channels = config.in_channels * config.stems
        self.final_conv = nn.Sequential(nn.Conv2d(c, out_channels, kernel_size=(2, 1), padding=(1, 0)))
        self.output_activation = make_activation(config.output_activation)

    def _sampling(self, direction: str, halves_time: bool) -> nn.Module:
        c = self.config.channels
        if self.config.sampling == "frequency":
            return FrequencySampling(c, direction)
        return TimeFrequencySampling(c, direction, (2, 2) if halves_time else (1, 2))

    def forward(self, x: Tensor) -> Tensor:
        x = self.first_conv(x).transpose(2, 3)  # [B, C, F, T] -> [B, C, T, F]
        skips: list[Tensor] = []
        for encoder, down in zip(self.encoders, self.downsampling):
            x = encoder(x)
            skips.append(x)
            x = down(x)
        x = self.mid_block(x)
        i = len(skips) - 1
        for up, decoder in zip(self.upsampling, self.decoders):
            x = decoder(torch.cat((up(x), skips[i]), 1))
            i -= 1
        out = self.output_activation(self.final_conv(x.transpose(2, 3)))
        batch, channels, bins, frames = out.shape
        return out.reshape(batch, self.stems, channels // self.stems, bins, frames)
