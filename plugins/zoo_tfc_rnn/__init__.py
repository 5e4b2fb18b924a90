"""TFC-RNN: TDC-RNN with the 2-D TFC dense block in place of TDC (present in the authors' code, §3.6)."""

from torch import Tensor, nn

from zoo_core import BlockContext, BlockType, hookimpl
from zoo_core.layers import DenseConvStack, RecurrentBranch


class TFCRNN(nn.Module):
    def __init__(self, ctx: BlockContext, layers: int, kernel_t: int, kernel_f: int, branch: dict, activation: str):
        super().__init__()
        c = ctx.out_channels
        self.tfc = DenseConvStack(ctx.in_channels, c, layers, kernel_f, kernel_t, activation=activation)
        self.bn = nn.BatchNorm2d(c)
        self.branch = RecurrentBranch(c, ctx.bins, activation=activation, **branch)

    def forward(self, x: Tensor) -> Tensor:
        x = self.bn(self.tfc(x))
        return x + self.branch(x)


def build_tfc_rnn(
    ctx: BlockContext,
    layers: int = 5,
    kernel_t: int = 3,
    kernel_f: int = 3,
    activation: str = "relu",
    **branch,
):
    """``branch``: arguments of the recurrent branch, see ``zoo_core.layers.RecurrentBranch``."""
    return TFCRNN(ctx, layers, kernel_t, kernel_f, branch, activation)


@hookimpl
def register_blocks(register):
    register(
        BlockType(
            name="tfc-rnn",
            build=build_tfc_rnn,
            sampling="time-frequency",
            defaults={
                "layers": 5, "kernel_t": 3, "kernel_f": 3,
                "hidden_factor": 16,
                "min_hidden": 16,
                "rnn_layers": 1,
                "rnn_bias": False,
                "tdf_bottleneck_factor": 16,
                "tdf_min_units": 16,
                "tdf_bias": False,
            },
            description="TFC plus a residual bidirectional-GRU branch over time",
        )
    )
