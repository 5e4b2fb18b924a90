"""The recurrent blocks of the paper (§3.5): a dense stack plus a residual bidirectional-GRU branch over time.

TDC-RNN and TFC-RNN share one builder; `tdc_rnn` and `tfc_rnn` register it with their dense stack chosen.
"""

from __future__ import annotations

import functools
from typing import Optional

from torch import Tensor, nn

from zoo_core import BlockType

from .layers import DenseConvStack, FrequencyMLP


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
    builder = functools.partial(build_recurrent_block, time_distributed=time_distributed)
    return BlockType(name, builder, sampling="time-frequency", description=description, unsupported={
        "aoti": "torch.export specialises the sequence length of its GRU layers, so the number of frames cannot "
                "stay dynamic; export it as TorchScript (the default format) instead",
    })
