"""The U-Net of Choi et al., ISMIR 2020 (the zoo's default architecture), registered like any other plugin.

One skeleton for every intermediate block of the paper: a first convolution over 2 bins, ``n_blocks // 2``
encoder levels, a middle block and as many decoder levels with concatenation skips, and a last convolution
back to the image (see `skeleton`). Registry entries choose it with ``architecture = { name = "unet", ... }``
(or no name: it is the default) and name their intermediate block with ``block``.
"""

from __future__ import annotations

from typing import Optional

from zoo_core import Architecture, NetworkContext, count_parameters, hookimpl

from .initialisation import initialise
from .skeleton import UNet, UNetConfig


def build_unet(
    ctx: NetworkContext,
    *,
    n_blocks: int = 7,
    channels: int = 24,
    sampling: Optional[str] = None,
    time_down_levels: Optional[list] = None,
    first_activation: str = "relu",
    output_activation: str = "identity",
) -> UNet:
    """``sampling`` defaults to what the block is designed for; ``time_down_levels`` (None: every level) are
    the levels whose down-sampling also halves time."""
    config = UNetConfig(
        n_blocks=n_blocks,
        in_channels=ctx.in_channels,
        bins=ctx.bins - 1,  # the first convolution spans two bins without padding
        frames=ctx.frames,
        channels=channels,
        sampling=sampling or ctx.block_type.sampling,
        time_down_levels=None if time_down_levels is None else tuple(time_down_levels),
        first_activation=first_activation,
        output_activation=output_activation,
        stems=ctx.stems,
    )
    return UNet(config, ctx.block)


def describe_unet(unet: UNet) -> dict:
    """Shapes and parameters per level, for ``zoo info``."""
    config = unet.config
    shapes = config.level_shapes()
    scaled = config.time_scaled_levels()
    levels = []
    for level in range(config.levels):
        frames, bins = shapes[level]
        mirror = config.levels - 1 - level
        levels.append(
            {
                "level": level,
                "frames": frames,
                "bins": bins,
                "sampling_scale": [1, 2] if config.sampling == "frequency" or level not in scaled else [2, 2],
                "encoder_parameters": count_parameters(unet.encoders[level]),
                "decoder_parameters": count_parameters(unet.decoders[mirror]),
                "sampling_parameters": count_parameters(unet.downsampling[level])
                + count_parameters(unet.upsampling[mirror]),
            }
        )
    frames, bins = shapes[-1]
    return {
        "first_conv": {"out": [config.channels, config.bins], "parameters": count_parameters(unet.first_conv)},
        "levels": levels,
        "middle": {"frames": frames, "bins": bins, "parameters": count_parameters(unet.mid_block)},
        "final_conv": {"parameters": count_parameters(unet.final_conv)},
        "channels": config.channels,
        "sampling": config.sampling,
        "time_down_levels": list(scaled),
        "output_activation": config.output_activation,
    }


@hookimpl
def register_architectures(register):
    register(
        Architecture(
            name="unet",
            build=build_unet,
            describe=describe_unet,
            initialise=initialise,
            description="Choi et al. 2020: one U-Net skeleton, interchangeable intermediate blocks",
        )
    )
