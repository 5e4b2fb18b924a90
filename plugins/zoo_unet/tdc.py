"""TDC: time-distributed convolutions (Choi et al., ISMIR 2020, §3.2).

A dense block of 1-D convolutions along frequency, applied to every frame on its own: no context across
time. Meant for the U-Net with frequency-only sampling, as in the paper's 17-block TDC model.
"""

from zoo_core import BlockContext, BlockType
from .layers import DenseConvStack


def build_tdc(ctx: BlockContext, *, layers: int = 5, kernel_f: int = 3, activation: str = "relu"):
    # the growth rate equals the U-Net's internal channels: the block emits only its last layer
    return DenseConvStack(
        ctx.in_channels, ctx.out_channels, layers, kernel_f=kernel_f, time_distributed=True, activation=activation
    )


BLOCK = BlockType("tdc", build_tdc, sampling="frequency",
                  description="Time-Distributed Convolutions: dense 1-D convs along frequency, per frame")
