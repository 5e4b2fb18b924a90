"""The paper's family (Choi et al., ISMIR 2020) as one plugin, registered exactly as a third party would.

- `skeleton`: one U-Net for every intermediate block: a first convolution over 2 bins, ``n_blocks // 2``
  encoder levels, a middle block and as many decoder levels with concatenation skips, a last convolution back
  to the image; `layers`: the layers the blocks and the sampling are built from;
- one module per block: `tdf`, `tdc`, `tfc`, `tfc_tdf`, `tdc_rnn`, `tfc_rnn` (with `recurrent`);
- `convert`: the authors' two checkpoint layouts (ISMIR 2020 and Lightning); `optimize`: the exact inference
  rewrite; `initialisation`: the authors' initialisation for training from scratch;
- the models: the ``[unet.models.*]`` tables of svs-zoo's registry.toml.

Registry entries choose it with ``architecture = { name = "unet", ... }`` and name their block with ``block``.
"""

from __future__ import annotations

from typing import Optional

from zoo_core import Architecture, NetworkContext, builtin_entries, count_parameters, hookimpl

from . import tdc, tdc_rnn, tdf, tfc, tfc_rnn, tfc_tdf
from .convert import convert
from .initialisation import initialise
from .optimize import optimize
from .skeleton import UNet, UNetConfig

BLOCKS = (tdf, tdc, tfc, tfc_tdf, tdc_rnn, tfc_rnn)


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
            convert=convert,
            initialise=initialise,
            optimize=optimize,
            description="Choi et al. 2020: one U-Net skeleton, interchangeable intermediate blocks",
        )
    )


@hookimpl
def register_blocks(register):
    for module in BLOCKS:
        register(module.BLOCK)


@hookimpl
def register_models(register):
    for entry in builtin_entries("unet"):
        register(entry)
