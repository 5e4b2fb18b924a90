"""TFC: time-frequency convolutions (Choi et al., ISMIR 2020, §3.3).

The TDC dense block with 2-D ``kernel_t x kernel_f`` convolutions, so it sees neighbouring frames too.
"""

from zoo_core import BlockContext, BlockType
from .layers import DenseConvStack


def build_tfc(ctx: BlockContext, *, layers: int = 5, kernel_t: int = 3, kernel_f: int = 3, activation: str = "relu"):
    return DenseConvStack(
        ctx.in_channels, ctx.out_channels, layers, kernel_f=kernel_f, kernel_t=kernel_t, activation=activation
    )


BLOCK = BlockType("tfc", build_tfc, sampling="time-frequency",
                  description="Time-Frequency Convolutions: dense 2-D convs")
