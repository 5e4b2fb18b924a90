"""Layers that block plugins build on, and the U-Net's sampling layers.

Tensors are ``[batch, channels, frames, bins]`` (time before frequency) unless a docstring says otherwise.
Attribute names follow the authors' original modules (``H`` for the dense layers, a DenseNet notation;
``conv``/``bn`` in the 1-D sampling layers) so that their checkpoints convert by renaming a few prefixes.
"""

from __future__ import annotations

import functools
from typing import Optional

import torch
from torch import Tensor, nn

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
    from .errors import ConfigError

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


class RecurrentBranch(nn.Module):
    """The RNN branch of the paper's TDC-RNN/TFC-RNN blocks (§3.5).

    Each channel of ``[B, C, T, F]`` is a sequence over time with ``F`` features, run through a bidirectional
    GRU with ``hidden = max(F // hidden_factor, min_hidden)`` units shared by all channels; a two-layer
    frequency MLP (``2*hidden → F``, BatchNorm always affine) maps the result back to ``F`` bins.
    """

    def __init__(
        self,
        channels: int,
        bins: int,
        *,
        hidden_factor: int = 16,
        min_hidden: int = 16,
        rnn_layers: int = 1,
        rnn_bias: bool = False,
        tdf_bottleneck_factor: Optional[int] = 16,
        tdf_min_units: int = 16,
        tdf_bias: bool = False,
        activation: str = "relu",
    ):
        super().__init__()
        hidden = max(bins // hidden_factor, min_hidden)
        self.rnn = nn.GRU(bins, hidden, rnn_layers, bias=rnn_bias, batch_first=True, bidirectional=True)
        self.tdf = FrequencyMLP(
            channels,
            2 * hidden,
            bins,
            bottleneck_factor=tdf_bottleneck_factor,
            min_units=tdf_min_units,
            bias=tdf_bias,
            norm_affine=True,
            activation=activation,
        )

    def forward(self, x: Tensor) -> Tensor:
        batch, channels, frames, bins = x.shape
        sequences, _ = self.rnn(x.reshape(batch * channels, frames, bins))
        return self.tdf(sequences.reshape(batch, channels, frames, -1))


class RecurrentDenseBlock(nn.Module):
    """The paper's recurrent blocks (§3.5): ``y = BN(dense(x)); out = y + RecurrentBranch(y)``.

    With a time-distributed dense stack it is TDC-RNN, with a 2-D one TFC-RNN: the dense stack has no context
    across frames (TDC) or only a few (TFC); the GRU adds context over the whole window.
    """

    def __init__(self, dense: DenseConvStack, channels: int, bins: int, branch: RecurrentBranch):
        super().__init__()
        self.dense = dense
        self.bn = nn.BatchNorm2d(channels)
        self.branch = branch

    def forward(self, x: Tensor) -> Tensor:
        x = self.bn(self.dense(x))
        return x + self.branch(x)


def build_recurrent_block(
    ctx,
    *,
    time_distributed: bool,
    layers: int = 5,
    kernel_t: int = 3,
    kernel_f: int = 3,
    activation: str = "relu",
    hidden_factor: int = 16,
    min_hidden: int = 16,
    rnn_layers: int = 1,
    rnn_bias: bool = False,
    tdf_bottleneck_factor: int = 16,
    tdf_min_units: int = 16,
    tdf_bias: bool = False,
) -> RecurrentDenseBlock:
    """The one builder of both recurrent block plugins (``time_distributed`` picks TDC-RNN or TFC-RNN; a
    time-distributed stack has no time kernel, so ``kernel_t`` does not apply to it). Defaults: the authors'
    refactored code."""
    c = ctx.out_channels
    dense = DenseConvStack(
        ctx.in_channels, c, layers, kernel_f=kernel_f, kernel_t=kernel_t, time_distributed=time_distributed,
        activation=activation,
    )
    branch = RecurrentBranch(
        c, ctx.bins, hidden_factor=hidden_factor, min_hidden=min_hidden, rnn_layers=rnn_layers, rnn_bias=rnn_bias,
        tdf_bottleneck_factor=tdf_bottleneck_factor, tdf_min_units=tdf_min_units, tdf_bias=tdf_bias,
        activation=activation,
    )
    return RecurrentDenseBlock(dense, c, ctx.bins, branch)


def recurrent_block_type(name: str, time_distributed: bool, description: str):
    """The `BlockType` of a recurrent block plugin: `build_recurrent_block` with its dense stack chosen."""
    from .blocks import BlockType

    builder = functools.partial(build_recurrent_block, time_distributed=time_distributed)
    return BlockType(name, builder, sampling="time-frequency", description=description, unsupported={
        "aoti": "torch.export specialises the sequence length of its GRU layers, so the number of frames cannot "
                "stay dynamic; export it as TorchScript (the default format) instead",
    })
