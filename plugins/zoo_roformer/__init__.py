"""Band-split RoFormers as a plugin: ``bs-roformer`` (Lu et al., 2023) and ``mel-band-roformer`` (Wang et al.,
2023), the networks of viperx's, Kimberley Jensen's and ZFTurbo's releases.

The options carry the names and meanings of the reference configs' ``model`` section (ZFTurbo's
Music-Source-Separation-Training), so a released config's values are copied as they are; the STFT settings go to
the entry's ``stft`` table, the stereo flag and the stem count come from the entry. `convert` reads the released
``.ckpt`` files unchanged (`convert`). Dropout (training only in the reference) is not implemented.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import torch
from torch import Tensor

from zoo_core import Architecture, Conversion, NetworkContext, builtin_entries, hookimpl
from zoo_core.errors import ConfigError

from . import bands as band_layout
from .convert import LAYOUT, from_reference
from .network import BandSplitRoformer
from .optimize import optimize

# the reference's default: 62 bands of 2 to 129 bins over the 1025 bins of a 2048-point STFT
DEFAULT_FREQS_PER_BANDS = [2] * 24 + [4] * 12 + [12] * 8 + [24] * 8 + [48] * 8 + [128, 129]


def _shared(ctx: NetworkContext, **options: Any) -> dict:
    if ctx.in_channels % 2:
        raise ConfigError("band-split RoFormers read complex-as-channels images (representation = \"cac\")")
    return dict(stems=ctx.stems, audio_channels=ctx.in_channels // 2, bins=ctx.bins, **options)


def build_bs_roformer(
    ctx: NetworkContext,
    *,
    dim: int = 384,
    depth: int = 6,
    time_transformer_depth: int = 1,
    freq_transformer_depth: int = 1,
    freqs_per_bands: list = tuple(DEFAULT_FREQS_PER_BANDS),
    dim_head: int = 64,
    heads: int = 8,
    mask_estimator_depth: int = 2,
    mlp_expansion_factor: int = 4,
    zero_dc: bool = True,
) -> BandSplitRoformer:
    """BS-RoFormer: consecutive bands of ``freqs_per_bands`` bins (summing to the bins of the entry's STFT)."""
    try:
        band_layout.check_band_widths(freqs_per_bands, ctx.bins)
    except ValueError as error:
        raise ConfigError(f"bs-roformer: {error}") from None
    return BandSplitRoformer(
        **_shared(ctx, band_widths=[int(w) for w in freqs_per_bands], dim=dim, depth=depth,
                  time_transformer_depth=time_transformer_depth, freq_transformer_depth=freq_transformer_depth,
                  heads=heads, dim_head=dim_head, mlp_expansion_factor=mlp_expansion_factor, zero_dc=zero_dc),
        mask_hidden_layers=mask_estimator_depth - 1,  # the reference's BS MLP: depth linear layers
        norm_output=False,
        final_norm=True,
    )


def build_mel_band_roformer(
    ctx: NetworkContext,
    *,
    dim: int = 384,
    depth: int = 6,
    time_transformer_depth: int = 1,
    freq_transformer_depth: int = 1,
    num_bands: int = 60,
    sample_rate: int = 44100,
    dim_head: int = 64,
    heads: int = 8,
    mask_estimator_depth: int = 1,
    mlp_expansion_factor: int = 4,
    zero_dc: bool = True,
) -> BandSplitRoformer:
    """Mel-Band RoFormer: ``num_bands`` overlapping mel bands of the STFT's bins (``sample_rate`` places them and
    must be the entry's)."""
    n_fft = 2 * (ctx.bins - 1)
    try:
        member = band_layout.mel_band_membership(sample_rate, n_fft, num_bands)
    except ValueError as error:
        raise ConfigError(f"mel-band-roformer: {error}") from None
    channels = ctx.in_channels // 2
    positions = band_layout.stereo_positions(band_layout.gathered_bins(member), channels)
    average_index, counts = band_layout.averaging_indices(positions, ctx.bins * channels)
    return BandSplitRoformer(
        **_shared(ctx, band_widths=band_layout.mel_band_widths(member), dim=dim, depth=depth,
                  time_transformer_depth=time_transformer_depth, freq_transformer_depth=freq_transformer_depth,
                  heads=heads, dim_head=dim_head, mlp_expansion_factor=mlp_expansion_factor, zero_dc=zero_dc),
        mask_hidden_layers=mask_estimator_depth,  # the reference's Mel MLP: depth + 1 linear layers
        norm_output=True,
        final_norm=False,
        positions=torch.from_numpy(positions),
        average_index=torch.from_numpy(average_index),
        band_counts=torch.from_numpy(counts),
    )


def convert_checkpoint(state_dict: Mapping[str, Tensor]) -> Optional[Conversion]:
    """A released checkpoint's state dict (the zoo has unwrapped ``state_dict``/``model``/``module.``) → ours."""
    try:
        converted = from_reference(state_dict)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    return None if converted is None else Conversion(converted, LAYOUT)


def describe(network: BandSplitRoformer) -> dict:
    return {
        "bands": len(network.band_split.bands),
        "blocks": len(network.blocks),
        "time_factor": network.time_factor,
    }


@hookimpl
def register_architectures(register):
    register(Architecture(
        "bs-roformer", build_bs_roformer, uses_blocks=False, describe=describe, convert=convert_checkpoint,
        optimize=optimize, description="Lu et al. 2023: band-split RoFormer, consecutive bands, axial time/band transformers",
    ))
    register(Architecture(
        "mel-band-roformer", build_mel_band_roformer, uses_blocks=False, describe=describe,
        convert=convert_checkpoint, optimize=optimize,
        description="Wang et al. 2023: band-split RoFormer over overlapping mel bands, masks averaged",
    ))


@hookimpl
def register_models(register):
    for entry in builtin_entries("roformer"):  # the [roformer.models.*] tables of svs-zoo's registry.toml
        register(entry)
