"""An example third-party svs-zoo plugin.

It adds the block ``plain-tfc-tdf`` — TFC-TDF with a plain (not densely connected) stack of 3x3 convolutions,
the simplification the same authors made later in KUIELab-MDX-Net (TFC-TDF-U-Net v2) —, the architecture
``multiplicative-unet`` (that model's skeleton: skips that multiply, channels that grow; see `architecture`),
and two models declared in ``models.toml`` beside this file. svs-zoo finds it through the entry point in this
package's pyproject.toml; nothing in svs-zoo changes.
"""

from pathlib import Path

from torch import Tensor, nn

from zoo_core import Architecture, BlockContext, BlockType, hookimpl
from zoo_unet.layers import FrequencyMLP, make_activation  # the paper family's layers: this block extends it
from zoo_core.registry import entries_from_toml


class PlainTFCTDF(nn.Module):
    def __init__(self, ctx: BlockContext, layers: int, kernel: int, bottleneck_factor: int, activation: str):
        super().__init__()
        c = ctx.out_channels
        units = []
        for j in range(layers):
            units += [
                nn.Conv2d(ctx.in_channels if j == 0 else c, c, kernel, padding=kernel // 2),
                nn.BatchNorm2d(c),
                make_activation(activation),
            ]
        self.convs = nn.Sequential(*units)
        self.tdf = FrequencyMLP(c, ctx.bins, ctx.bins, bottleneck_factor=bottleneck_factor, min_units=1, bias=False,
                                norm_affine=True, activation=activation)

    def forward(self, x: Tensor) -> Tensor:
        x = self.convs(x)
        return x + self.tdf(x)


def build(ctx: BlockContext, *, layers: int = 3, kernel: int = 3, bottleneck_factor: int = 8, activation: str = "relu"):
    return PlainTFCTDF(ctx, layers, kernel, bottleneck_factor, activation)


@hookimpl
def register_blocks(register):
    register(
        BlockType(
            name="plain-tfc-tdf",
            build=build,
            sampling="time-frequency",
            description="TFC-TDF with plain (non-dense) 3x3 convolutions, TDF bottleneck F/8",
        )
    )


@hookimpl
def register_architectures(register):
    from . import architecture

    register(
        Architecture(
            name="multiplicative-unet",
            build=architecture.build,
            description="U-Net with multiplicative skips and growing channels (KUIELab-MDX-Net's skeleton)",
        )
    )


@hookimpl
def register_models(register):
    for entry in entries_from_toml(Path(__file__).with_name("models.toml")):
        register(entry)
