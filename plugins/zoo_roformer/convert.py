"""Released band-split RoFormer checkpoints (ZFTurbo's Music-Source-Separation-Training, ``models/bs_roformer/``,
the code lucidrains' BS-RoFormer became; viperx's, Kimberley Jensen's and ZFTurbo's files) ↔ our state dicts.

Module names only differ; no tensor is reshaped. ``{t}`` is 0 for the time transformer and 1 for the band one
(the reference's ``layers.{i}`` list with ``linear_transformer_depth = 0``, as every released file has):

=====================================================  ===================================================
reference                                              svs-zoo
=====================================================  ===================================================
``layers.{i}.{t}.layers.{j}.0.norm.gamma``              ``blocks.{i}.{time|freq}.layers.{j}.attention.norm.weight``
``layers.{i}.{t}.layers.{j}.0.to_qkv|to_gates.*``       ``blocks.{i}.{time|freq}.layers.{j}.attention.to_qkv|to_gates.*``
``layers.{i}.{t}.layers.{j}.0.to_out.0.weight``         ``blocks.{i}.{time|freq}.layers.{j}.attention.to_out.weight``
``layers.{i}.{t}.layers.{j}.1.net.0.gamma``             ``blocks.{i}.{time|freq}.layers.{j}.feedforward.norm.weight``
``layers.{i}.{t}.layers.{j}.1.net.{1|4}.*``             ``blocks.{i}.{time|freq}.layers.{j}.feedforward.{up|down}.*``
``layers.{i}.{t}.norm.gamma`` (Mel-Band)                ``blocks.{i}.{time|freq}.norm.weight``
``final_norm.gamma`` (BS)                               ``final_norm.weight``
``band_split.to_features.{b}.0.gamma`` / ``.1.*``       ``band_split.bands.{b}.norm.weight`` / ``.project.*``
``mask_estimators.{s}.to_freqs.{b}.0.{2k}.*``           ``mask_estimators.{s}.bands.{b}.layers.{k}.*``
=====================================================  ===================================================

``layers.{i}.{t}.layers.{j}.0.rotary_embed.freqs`` (rotary-embedding-torch keeps its inverse frequencies as a
frozen parameter, so every attention layer's copy is in the file) is not a weight of ours: the network computes
the same float32 values; a file whose values differ (another rotary base) is refused rather than run wrongly.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Optional

import torch
from torch import Tensor

from .network import rotary_inverse_frequencies

LAYOUT = "msst-roformer"
_TRANSFORMERS = {"0": "time", "1": "freq"}
_ROTARY = re.compile(r"^layers\.\d+\.[01]\.layers\.\d+\.0\.rotary_embed\.freqs$")
_RULES = [
    (re.compile(r"^layers\.(\d+)\.([01])\.layers\.(\d+)\.0\.norm\.gamma$"),
     lambda m: f"blocks.{m[1]}.{_TRANSFORMERS[m[2]]}.layers.{m[3]}.attention.norm.weight"),
    (re.compile(r"^layers\.(\d+)\.([01])\.layers\.(\d+)\.0\.(to_qkv\.weight|to_gates\.weight|to_gates\.bias)$"),
     lambda m: f"blocks.{m[1]}.{_TRANSFORMERS[m[2]]}.layers.{m[3]}.attention.{m[4]}"),
    (re.compile(r"^layers\.(\d+)\.([01])\.layers\.(\d+)\.0\.to_out\.0\.weight$"),
     lambda m: f"blocks.{m[1]}.{_TRANSFORMERS[m[2]]}.layers.{m[3]}.attention.to_out.weight"),
    (re.compile(r"^layers\.(\d+)\.([01])\.layers\.(\d+)\.1\.net\.0\.gamma$"),
     lambda m: f"blocks.{m[1]}.{_TRANSFORMERS[m[2]]}.layers.{m[3]}.feedforward.norm.weight"),
    (re.compile(r"^layers\.(\d+)\.([01])\.layers\.(\d+)\.1\.net\.([14])\.(weight|bias)$"),
     lambda m: f"blocks.{m[1]}.{_TRANSFORMERS[m[2]]}.layers.{m[3]}.feedforward.{'up' if m[4] == '1' else 'down'}.{m[5]}"),
    (re.compile(r"^layers\.(\d+)\.([01])\.norm\.gamma$"),
     lambda m: f"blocks.{m[1]}.{_TRANSFORMERS[m[2]]}.norm.weight"),
    (re.compile(r"^final_norm\.gamma$"), lambda m: "final_norm.weight"),
    (re.compile(r"^band_split\.to_features\.(\d+)\.0\.gamma$"), lambda m: f"band_split.bands.{m[1]}.norm.weight"),
    (re.compile(r"^band_split\.to_features\.(\d+)\.1\.(weight|bias)$"),
     lambda m: f"band_split.bands.{m[1]}.project.{m[2]}"),
    (re.compile(r"^mask_estimators\.(\d+)\.to_freqs\.(\d+)\.0\.(\d+)\.(weight|bias)$"),
     lambda m: f"mask_estimators.{m[1]}.bands.{m[2]}.layers.{int(m[3]) // 2}.{m[4]}"),
]


def from_reference_key(key: str) -> Optional[str]:
    """A reference tensor name → ours; None for a name outside the layout."""
    for pattern, rename in _RULES:
        match = pattern.match(key)
        if match:
            return rename(match)
    return None


def from_reference(state: Mapping[str, Any]) -> Optional[dict[str, Tensor]]:
    """A reference state dict (already unwrapped) → ours, or None when any key is not of this layout.

    Raises ValueError for rotary frequencies that are not the standard ones (base 10000)."""
    converted: dict[str, Tensor] = {}
    for key, value in state.items():
        if _ROTARY.match(key):
            expected = rotary_inverse_frequencies(value.numel() * 2)
            if not torch.allclose(value.float().flatten(), expected, rtol=1e-6, atol=0.0):
                raise ValueError(f"{key}: rotary frequencies other than base 10000's are not supported")
            continue
        ours = from_reference_key(key)
        if ours is None or not isinstance(value, Tensor):
            return None
        converted[ours] = value
    return converted or None


def to_reference(state_dict: Mapping[str, Tensor], dim_head: int) -> dict[str, Tensor]:
    """Ours → the reference naming, with the rotary frequencies its loader requires (for tests and export to
    the reference code)."""
    rules = [(re.compile(r"^blocks\.(\d+)\.(time|freq)\."), lambda m: f"layers.{m[1]}.{'0' if m[2] == 'time' else '1'}.")]
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        ref = key
        for pattern, rename in rules:
            ref = pattern.sub(rename, ref)
        ref = (ref.replace(".attention.norm.weight", ".0.norm.gamma").replace(".attention.to_out.weight", ".0.to_out.0.weight")
               .replace(".attention.", ".0.").replace(".feedforward.norm.weight", ".1.net.0.gamma")
               .replace(".feedforward.up.", ".1.net.1.").replace(".feedforward.down.", ".1.net.4."))
        ref = re.sub(r"^final_norm\.weight$", "final_norm.gamma", ref)
        ref = re.sub(r"^(layers\.\d+\.[01])\.norm\.weight$", r"\1.norm.gamma", ref)
        ref = re.sub(r"^band_split\.bands\.(\d+)\.norm\.weight$", r"band_split.to_features.\1.0.gamma", ref)
        ref = re.sub(r"^band_split\.bands\.(\d+)\.project\.", r"band_split.to_features.\1.1.", ref)
        ref = re.sub(r"^mask_estimators\.(\d+)\.bands\.(\d+)\.layers\.(\d+)\.",
                     lambda m: f"mask_estimators.{m[1]}.to_freqs.{m[2]}.0.{2 * int(m[3])}.", ref)
        out[ref] = value
        attention = re.match(r"^(layers\.\d+\.[01]\.layers\.\d+\.0)\.to_qkv\.weight$", ref)
        if attention:
            out[f"{attention[1]}.rotary_embed.freqs"] = rotary_inverse_frequencies(dim_head)
    return out
