"""TFC-TDF: the paper's best block (Choi et al., ISMIR 2020, §3.4).

``y = TFC(x); out = y + TDF(y)``: dense 2-D convolutions, then a residual frequency MLP that links distant
bins of the same frame (harmonics) which small kernels cannot reach.
"""

from typing import Optional

from torch import Tensor, nn

from zoo_core import BlockContext, BlockType
from .layers import DenseConvStack, FrequencyMLP


class TFCTDF(nn.Module):
    def __init__(self, tfc: DenseConvStack, tdf: FrequencyMLP):
        super().__init__()
        self.tfc = tfc
        self.tdf = tdf

    def forward(self, x: Tensor) -> Tensor:
        x = self.tfc(x)
        return x + self.tdf(x)


def build_tfc_tdf(
    ctx: BlockContext,
    *,
    layers: int = 5,
    kernel_t: int = 3,
    kernel_f: int = 3,
    bottleneck_factor: Optional[int] = 16,
    min_units: int = 16,
    bias: bool = True,
    norm_affine: bool = True,
    activation: str = "relu",
):
    c = ctx.out_channels
    tfc = DenseConvStack(ctx.in_channels, c, layers, kernel_f=kernel_f, kernel_t=kernel_t, activation=activation)
    tdf = FrequencyMLP(
        c, ctx.bins, ctx.bins, bottleneck_factor=bottleneck_factor, min_units=min_units, bias=bias,
        norm_affine=norm_affine, activation=activation,
    )
    return TFCTDF(tfc, tdf)


BLOCK = BlockType("tfc-tdf", build_tfc_tdf, sampling="time-frequency",
                  description="TFC followed by a residual TDF (the paper's best block)")
