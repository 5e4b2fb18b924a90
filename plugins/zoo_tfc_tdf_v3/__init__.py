"""TFC-TDF-UNet v3 (Kim, Lee, Jung, SDX 2023), the network of the MDX23C models, as a plugin.

It registers the architecture ``tfc-tdf-v3`` (the skeleton: subbands folded into channels, channel growth per
level, concatenated skips, output gated by the first convolution; `network`) and the block ``tfc-tdf-v3`` (its
pre-activation TFC-TDF units). The skeleton builds its blocks through the zoo's block interface, so any
registered block can fill it; its ``norm`` and ``act`` apply to the blocks that take them. `convert` reads the
public MDX23C checkpoints (ZFTurbo's and UVR's naming) unchanged.
"""

from __future__ import annotations

from typing import Mapping, Optional

import torch
from torch import Tensor, nn

from zoo_core import Architecture, BlockContext, BlockType, Conversion, NetworkContext, builtin_entries, hookimpl

from .convert import from_reference
from .network import TFCTDFv3Block, TFCTDFv3Net, optimize_v3

LAYOUT = "mdx23c"  # the reference code's tensor names (ZFTurbo, UVR, KUIELab)


def build_block(
    ctx: BlockContext, *, layers: int = 2, bottleneck_factor: int = 4, norm: str = "InstanceNorm", act: str = "gelu"
) -> TFCTDFv3Block:
    return TFCTDFv3Block(ctx.in_channels, ctx.out_channels, ctx.bins, layers, bottleneck_factor, norm, act)


def build_network(
    ctx: NetworkContext,
    *,
    subbands: int = 4,
    channels: int = 128,
    growth: int = 128,
    levels: int = 5,
    scale: list = (2, 2),
    norm: str = "InstanceNorm",
    act: str = "gelu",
) -> TFCTDFv3Net:
    """Defaults: the MDX23C configurations. ``scale`` is the (time, frequency) factor of each down-sampling."""
    block_type = ctx.block_type
    shared = {key: value for key, value in {"norm": norm, "act": act}.items() if key in block_type.defaults}

    def make_block(in_channels: int, out_channels: int, bins: int, level: int, position: str) -> nn.Module:
        frames = ctx.frames // scale[0] ** level
        place = BlockContext(in_channels, out_channels, bins, frames, level, position)
        return block_type.create(place, {**shared, **ctx.block_args})

    return TFCTDFv3Net(
        stems=ctx.stems,
        audio_channels=ctx.in_channels // 2,
        bins=ctx.bins,
        subbands=subbands,
        channels=channels,
        growth=growth,
        levels=levels,
        scale=(int(scale[0]), int(scale[1])),
        norm=norm,
        act=act,
        make_block=make_block,
    )


def convert_checkpoint(state_dict: Mapping[str, Tensor]) -> Optional[Conversion]:
    """A state_dict in the reference naming (the zoo has unwrapped ZFTurbo's loader's wrappers) → ours."""
    try:
        return Conversion(from_reference(state_dict), LAYOUT)
    except (KeyError, TypeError):  # not this family's naming: the tensors go on as they are
        return None


def describe(network: TFCTDFv3Net) -> dict:
    return {"subbands": network.subbands, "time_factor": network.time_factor, "levels": len(network.encoders)}


def optimize(network: TFCTDFv3Net, dtype: torch.dtype, target: str) -> nn.Module:
    """NNPACK's Winograd convolutions for the large levels (`optimize_v3`), in float32 and in this process only:
    NNPACK is a CPU library whose kernel failed in a C++ host with two threads, so exported files keep the plain
    convolutions."""
    return optimize_v3(network) if dtype == torch.float32 and target == "process" else network


ARCHITECTURE = Architecture("tfc-tdf-v3", build_network, describe=describe, convert=convert_checkpoint,
                            optimize=optimize, description="Kim et al. 2023 (MDX23C): TFC-TDF-UNet v3, subbands, "
                                                           "growing channels, gated output")
BLOCK = BlockType("tfc-tdf-v3", build_block, sampling="time-frequency",
                  description="TFC-TDF-UNet v3's unit stack: pre-activation TFC, residual TDF, 1x1 shortcut")


@hookimpl
def register_architectures(register):
    register(ARCHITECTURE)


@hookimpl
def register_blocks(register):
    register(BLOCK)


@hookimpl
def register_models(register):
    for entry in builtin_entries("tfc-tdf-v3"):
        register(entry)
