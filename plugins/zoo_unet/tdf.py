"""TDF: time-distributed fully-connected layers (Choi et al., ISMIR 2020, §3.1).

An MLP over the frequency axis of every frame and channel. In the decoder, where the block receives the
concatenated skip (2C channels), a 1x1 convolution brings the channels back to C after the MLP, as in the
authors' TDF U-Net; channels otherwise mix only in the first/last convolutions and the sampling layers.
"""

from typing import Optional

from torch import Tensor, nn

from zoo_core import BlockContext, BlockType
from .layers import FrequencyMLP


class TDFBlock(nn.Module):
    def __init__(self, ctx: BlockContext, mlp: FrequencyMLP):
        super().__init__()
        self.tdf = mlp
        self.project = nn.Identity() if ctx.in_channels == ctx.out_channels else nn.Conv2d(
            ctx.in_channels, ctx.out_channels, 1
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.project(self.tdf(x))


def build_tdf(
    ctx: BlockContext,
    *,
    bottleneck_factor: Optional[int] = 16,
    min_units: int = 16,
    bias: bool = False,
    activation: str = "relu",
):
    # the authors' refactored TDF ties the BatchNorm scale/shift to the same flag as the linear biases
    mlp = FrequencyMLP(
        ctx.in_channels, ctx.bins, ctx.bins, bottleneck_factor=bottleneck_factor, min_units=min_units, bias=bias,
        norm_affine=bias, activation=activation,
    )
    return TDFBlock(ctx, mlp)


BLOCK = BlockType("tdf", build_tdf, sampling="frequency",
                  description="Time-Distributed Fully-connected: a frequency MLP per frame")
