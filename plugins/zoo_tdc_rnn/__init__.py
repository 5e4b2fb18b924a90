"""TDC-RNN (Choi et al., ISMIR 2020, §3.5): a TDC dense block plus a residual recurrent branch.

``y = BN(TDC(x)); out = y + TDF(BiGRU(y))``, the GRU running over time for each channel. TDC alone has no
context across frames; the GRU adds it. Defaults are those of the authors' refactored code, where the
U-Net uses 2-D strided sampling.
"""

from torch import Tensor, nn

from zoo_core import BlockContext, BlockType, hookimpl
from zoo_core.layers import DenseConvStack, RecurrentBranch


class TDCRNN(nn.Module):
    def __init__(self, ctx: BlockContext, layers: int, kernel_f: int, branch: dict, activation: str):
        super().__init__()
        c = ctx.out_channels
        self.tdc = DenseConvStack(ctx.in_channels, c, layers, kernel_f, time_distributed=True, activation=activation)
        self.bn = nn.BatchNorm2d(c)
        self.branch = RecurrentBranch(c, ctx.bins, activation=activation, **branch)

    def forward(self, x: Tensor) -> Tensor:
        x = self.bn(self.tdc(x))
        return x + self.branch(x)


def build_tdc_rnn(
    ctx: BlockContext,
    layers: int = 5,
    kernel_f: int = 3,
    activation: str = "relu",
    **branch,
):
    """``branch``: arguments of the recurrent branch, see ``zoo_core.layers.RecurrentBranch``."""
    return TDCRNN(ctx, layers, kernel_f, branch, activation)


@hookimpl
def register_blocks(register):
    register(
        BlockType(
            name="tdc-rnn",
            build=build_tdc_rnn,
            sampling="time-frequency",
            defaults={
                "layers": 5, "kernel_f": 3,
                "hidden_factor": 16,
                "min_hidden": 16,
                "rnn_layers": 1,
                "rnn_bias": False,
                "tdf_bottleneck_factor": 16,
                "tdf_min_units": 16,
                "tdf_bias": False,
            },
            description="TDC plus a residual bidirectional-GRU branch over time",
        )
    )
