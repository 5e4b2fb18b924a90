"""MDX23C checkpoints (the reference ``TFC_TDF_net`` of ZFTurbo's Music-Source-Separation-Training, UVR's
``lib_v5/tfc_tdf_v3.py`` and KUIELab's sdx23 code, which share one naming) ↔ `TFCTDFv3Net` state dicts.

The two namings differ in module names only; tensors are never reshaped or permuted (the reference's
convolutions, linear layers and subband folding are the same operations on the same axes).

=========================================================  ==============================================
reference                                                  svs-zoo
=========================================================  ==============================================
``first_conv.weight``                                      ``first_conv.weight``
``encoder_blocks.{i}.tfc_tdf.blocks.{j}.<unit>``           ``encoders.{i}.units.{j}.<unit>``
``encoder_blocks.{i}.downscale.conv.{0,2}.*``              ``downsampling.{i}.{norm,conv}.*``
``bottleneck_block.blocks.{j}.<unit>``                     ``mid_block.units.{j}.<unit>``
``decoder_blocks.{i}.upscale.conv.{0,2}.*``                ``upsampling.{i}.{norm,conv}.*``
``decoder_blocks.{i}.tfc_tdf.blocks.{j}.<unit>``           ``decoders.{i}.units.{j}.<unit>``
``final_conv.{0,2}.weight``                                ``final_conv.{merge,to_stems}.weight``
=========================================================  ==============================================

and inside a unit ``tfc1.0`` / ``tfc1.2`` → ``tfc1.norm`` / ``tfc1.conv`` (same for ``tfc2``), ``tdf.0``,
``tdf.2``, ``tdf.3``, ``tdf.5`` → ``tdf.norm1``, ``tdf.squeeze``, ``tdf.norm2``, ``tdf.expand``;
``shortcut`` stays. Decoder ``i`` is the ``i``-th to run (the deepest first) in both namings. Parameter and
buffer suffixes (``weight``, ``bias``, BatchNorm's ``running_mean`` …) pass through unchanged.

The published checkpoints are plain state dicts: the code that saved them stored ``model.state_dict()``, and
UVR and the ZFTurbo inference of their release load them with a strict ``load_state_dict(torch.load(path))``.
`unwrap_checkpoint` also accepts the wrappers ZFTurbo's current loader strips (``state``, ``state_dict``,
``model_state_dict``) and a ``module.`` or ``model.`` prefix on every key (DataParallel, a wrapping module).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from torch import Tensor

# (reference, svs-zoo) name prefixes; {i}, {j} stand for indices and carry over
_BLOCK_PREFIXES = (
    ("encoder_blocks.{i}.tfc_tdf.blocks.{j}.", "encoders.{i}.units.{j}."),
    ("bottleneck_block.blocks.{j}.", "mid_block.units.{j}."),
    ("decoder_blocks.{i}.tfc_tdf.blocks.{j}.", "decoders.{i}.units.{j}."),
)
_UNIT_PARTS = (
    ("tfc1.0.", "tfc1.norm."),
    ("tfc1.2.", "tfc1.conv."),
    ("tdf.0.", "tdf.norm1."),
    ("tdf.2.", "tdf.squeeze."),
    ("tdf.3.", "tdf.norm2."),
    ("tdf.5.", "tdf.expand."),
    ("tfc2.0.", "tfc2.norm."),
    ("tfc2.2.", "tfc2.conv."),
    ("shortcut.", "shortcut."),
)
_OTHER_PREFIXES = (
    ("first_conv.", "first_conv."),
    ("encoder_blocks.{i}.downscale.conv.0.", "downsampling.{i}.norm."),
    ("encoder_blocks.{i}.downscale.conv.2.", "downsampling.{i}.conv."),
    ("decoder_blocks.{i}.upscale.conv.0.", "upsampling.{i}.norm."),
    ("decoder_blocks.{i}.upscale.conv.2.", "upsampling.{i}.conv."),
    ("final_conv.0.", "final_conv.merge."),
    ("final_conv.2.", "final_conv.to_stems."),
)
# what follows a module path: parameters, and the buffers of BatchNorm
_SUFFIXES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
_PAIRS = tuple(
    (block + part_ref, ours + part_ours)
    for block, ours in _BLOCK_PREFIXES
    for part_ref, part_ours in _UNIT_PARTS
) + _OTHER_PREFIXES


def _compile(prefix: str) -> re.Pattern:
    """``encoders.{i}.units.{j}.`` → a regex matching a full key under that prefix, indices as groups."""
    pattern = re.sub(r"\\\{(\w)\\\}", r"(?P<\1>\\d+)", re.escape(prefix))
    return re.compile("^" + pattern + "(?P<suffix>" + "|".join(_SUFFIXES) + ")$")


def _rules(from_reference: bool) -> list[tuple[re.Pattern, str]]:
    return [
        (_compile(ref if from_reference else ours), (ours if from_reference else ref) + "{suffix}")
        for ref, ours in _PAIRS
    ]


_FROM_REFERENCE = _rules(True)
_TO_REFERENCE = _rules(False)


def _rename(key: str, rules: list[tuple[re.Pattern, str]]) -> str:
    for pattern, template in rules:
        match = pattern.match(key)
        if match:
            return template.format(**match.groupdict())
    raise KeyError(f"no MDX23C/TFC-TDF v3 name mapping for {key!r}")


def from_reference_key(key: str) -> str:
    """``encoder_blocks.0.tfc_tdf.blocks.0.tfc1.2.weight`` → ``encoders.0.units.0.tfc1.conv.weight``."""
    return _rename(key, _FROM_REFERENCE)


def to_reference_key(key: str) -> str:
    """The inverse of `from_reference_key`."""
    return _rename(key, _TO_REFERENCE)


def unwrap_checkpoint(checkpoint: Mapping[str, Any]) -> dict[str, Tensor]:
    """The reference state dict inside a loaded checkpoint: plain, or under ``state`` / ``state_dict`` /
    ``model_state_dict``, with a ``module.`` (DataParallel) or ``model.`` (a wrapping module's attribute)
    prefix on every key removed."""
    state: Any = checkpoint
    for wrapper in ("state", "state_dict", "model_state_dict"):
        if isinstance(state, Mapping) and wrapper in state and isinstance(state[wrapper], Mapping):
            state = state[wrapper]
    state = dict(state)
    for prefix in ("module.", "model."):
        if state and all(key.startswith(prefix) for key in state):
            state = {key[len(prefix) :]: value for key, value in state.items()}
    return state


def from_reference(checkpoint: Mapping[str, Any]) -> dict[str, Tensor]:
    """A reference checkpoint (wrapped or not) → a state dict for `TFCTDFv3Net` (same tensors, our names)."""
    return {from_reference_key(key): value for key, value in unwrap_checkpoint(checkpoint).items()}


def to_reference(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A `TFCTDFv3Net` state dict → the reference naming (loads into the reference ``TFC_TDF_net``)."""
    return {to_reference_key(key): value for key, value in state_dict.items()}


def network_kwargs(config: Mapping[str, Any]) -> dict[str, Any]:
    """`TFCTDFv3Net` keyword arguments from a reference YAML config (``audio``/``model``/``training``), read as
    nested mappings. The stem count follows the reference: 1 if ``training.target_instrument`` is set, else
    the number of ``training.instruments`` (in that order: the checkpoint's output order)."""
    audio, model, training = config["audio"], config["model"], config["training"]
    stems = 1 if training.get("target_instrument") else len(training["instruments"])
    scale = model["scale"]
    return {
        "stems": stems,
        "audio_channels": int(audio["num_channels"]),
        "bins": int(audio["dim_f"]),
        "subbands": int(model["num_subbands"]),
        "channels": int(model["num_channels"]),
        "growth": int(model["growth"]),
        "levels": int(model["num_scales"]),
        "scale": (int(scale[0]), int(scale[1])),
        "layers": int(model["num_blocks_per_scale"]),
        "bottleneck_factor": int(model["bottleneck_factor"]),
        "norm": str(model["norm"]),
        "act": str(model["act"]),
    }
