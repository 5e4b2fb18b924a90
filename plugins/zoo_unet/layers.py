"""The layers the paper's blocks are built from, and the U-Net's sampling layers.

Tensors are ``[batch, channels, frames, bins]`` (time before frequency) unless a docstring says otherwise.
Attribute names follow the authors' original modules (``H`` for the dense layers, a DenseNet notation;
``conv``/``bn`` in the 1-D sampling layers) so that their checkpoints convert by renaming a few prefixes.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from zoo_core import ConfigError

ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}


def make_activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ConfigError(f"unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)}") from None


class DenseConvStack(nn.Module):
    """``layers`` densely connected conv → BatchNorm → activation units; returns the last unit's output only.

    Unit ``j`` sees the block input concatenated with every earlier unit's output (newest first) and emits
    ``growth`` channels. With ``time_distributed=True`` the convolutions are 1-D along frequency, applied to
    every frame independently (the paper's TDC); otherwise they are 2-D ``kernel_t x kernel_f`` (TFC).
    """

    def __init__(
        self,
        in_channels: int,
        growth: int,
        layers: int,
        *,
        kernel_f: int = 3,
        kernel_t: int = 3,
        time_distributed: bool = False,
        activation: str = "relu",
    ):
        super().__init__()
        self.time_distributed = time_distributed
        self.H = nn.ModuleList()
        channels = in_channels
        for _ in range(layers):
            if time_distributed:
                conv: nn.Module = nn.Conv1d(channels, growth, kernel_f, padding=kernel_f // 2)
                norm: nn.Module = nn.BatchNorm1d(growth)
            else:
                conv = nn.Conv2d(channels, growth, (kernel_t, kernel_f), padding=(kernel_t // 2, kernel_f // 2))
                norm = nn.BatchNorm2d(growth)
            self.H.append(nn.Sequential(conv, norm, make_activation(activation)))
            channels += growth

    def dense(self, x: Tensor) -> Tensor:
        """Unit ``j`` reads the input and every earlier unit's output, newest first; the last unit's output."""
        features = x
        out = x
        first = True
        for unit in self.H:
            if not first:
                features = torch.cat((out, features), 1)
            out = unit(features)
            first = False
        return out

    def forward(self, x: Tensor) -> Tensor:
        batch, _, frames, bins = x.shape
        if self.time_distributed:
            # every frame becomes its own 1-D sequence over frequency
            x = x.transpose(1, 2).reshape(batch * frames, -1, bins)
        out = self.dense(x)
        if self.time_distributed:
            out = out.reshape(batch, frames, -1, bins).transpose(1, 2)
        return out


class FrequencyMLP(nn.Module):
    """The paper's TDF: a small MLP on the frequency axis, shared by every channel and frame.

    Two layers ``in_bins → units → out_bins`` with ``units = max(out_bins // bottleneck_factor, min_units)``,
    or one layer ``in_bins → out_bins`` when ``bottleneck_factor`` is None. Each linear layer is followed by
    BatchNorm over ``channels`` and the activation. ``bias`` switches the linear biases, ``norm_affine`` the
    BatchNorm scale and shift (the authors' refactored code tied both to one flag).
    """

    def __init__(
        self,
        channels: int,
        in_bins: int,
        out_bins: Optional[int] = None,
        *,
        bottleneck_factor: Optional[int] = 16,
        min_units: int = 16,
        bias: bool = True,
        norm_affine: bool = True,
        activation: str = "relu",
    ):
        super().__init__()
        out_bins = in_bins if out_bins is None else out_bins
        if bottleneck_factor is None:
            self.units = out_bins
            self.mlp = nn.Sequential(
                nn.Linear(in_bins, out_bins, bias=bias),
                nn.BatchNorm2d(channels, affine=norm_affine),
                make_activation(activation),
            )
        else:
            self.units = max(out_bins // bottleneck_factor, min_units)
            self.mlp = nn.Sequential(
                nn.Linear(in_bins, self.units, bias=bias),
                nn.BatchNorm2d(channels, affine=norm_affine),
                make_activation(activation),
                nn.Linear(self.units, out_bins, bias=bias),
                nn.BatchNorm2d(channels, affine=norm_affine),
                make_activation(activation),
            )

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp(x)


class FrequencySampling(nn.Module):
    """Halve (``down``) or double (``up``) the bins with a per-frame 1-D convolution, kernel = stride = 2.

    Time is never re-sampled: the paper's sampling for the time-distributed (TDC, TDF) U-Nets.
    """

    def __init__(self, channels: int, direction: str):
        super().__init__()
        if direction == "down":
            self.conv: nn.Module = nn.Conv1d(channels, channels, 2, stride=2)
        else:
            self.conv = nn.ConvTranspose1d(channels, channels, 2, stride=2)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: Tensor) -> Tensor:
        batch, channels, frames, bins = x.shape
        x = x.transpose(1, 2).reshape(batch * frames, channels, bins)
        x = self.conv(x)
        x = x.reshape(batch, frames, channels, -1).transpose(1, 2)
        return self.bn(x)


class TimeFrequencySampling(nn.Sequential):
    """Strided 2-D (transposed) convolution with kernel = stride = ``scale`` = (time, frequency), then BatchNorm.

    No activation, as in the paper.
    """

    def __init__(self, channels: int, direction: str, scale: tuple[int, int]):
        conv_type = nn.Conv2d if direction == "down" else nn.ConvTranspose2d
        super().__init__(conv_type(channels, channels, scale, stride=scale), nn.BatchNorm2d(channels))
        self.scale = scale
