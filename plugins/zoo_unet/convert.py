"""The authors' released checkpoints → the U-Net's tensor names. Two generations of their code:

* ``ismir2020`` (the paper's code): the keys already are ours, except inside blocks whose attributes we name
  differently (``_BLOCK_RENAMES``: the TDF of TFC-TDF, the dense block and recurrent branch of TFC-RNN and
  TDC-RNN).
* ``lightning`` (the refactored code): a Lightning checkpoint whose ``state_dict`` holds the U-Net under
  ``spec2spec.`` plus the STFT window. Its U-Net reads ``[B, 4, T, F]`` with channels
  ``[Re L, Re R, Im L, Im R]`` through (1, 2) first/last kernels; ours reads ``[B, 4, F, T]`` with
  ``[Re L, Im L, Re R, Im R]`` through (2, 1) kernels, so those two convolutions are transposed and their
  CaC channels permuted. Both U-Nets see all n_fft/2 + 1 bins. Its blocks use the same attribute names as the
  paper's code, plus those of its TDF U-Net (the TDF is the block; a decoder is ``Sequential(TDF, 1x1 conv)``).
  Its hyper-parameters record the framing, and the Lightning code always centred its STFT.

The zoo has already taken the state_dict out of any wrapper and removed ``module.``/``model.`` prefixes.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import torch
from torch import Tensor

from zoo_core import Conversion

# our CaC channel i comes from Lightning channel _CAC_FROM_LIGHTNING[i]
_CAC_FROM_LIGHTNING = [0, 2, 1, 3]
_LIGHTNING_MODULES = {"downsamplings": "downsampling", "upsamplings": "upsampling", "last_conv": "final_conv"}
_LIGHTNING_DROPPED = ("stft.stft.window",)  # the STFT window: derived, never a weight
# the authors' block attribute names → ours, for a key relative to the U-Net; the first match wins. Both code
# generations build blocks from the same modules (TIF = TDF, TIC = TDC; TIC_RNN/TFC_RNN hold rnn + tif_f1_to_f2).
_BLOCK = r"^((?:encoders|decoders)\.\d+|mid_block)\."
_BLOCK_RENAMES = [
    (re.compile(_BLOCK + r"tif\.tif\."), r"\1.tdf.mlp."),  # TFC-TDF: its TDF
    (re.compile(_BLOCK + r"tif_f1_to_f2\.tif\."), r"\1.branch.tdf.mlp."),  # TDC-RNN, TFC-RNN: MLP after the GRU
    (re.compile(_BLOCK + r"rnn\."), r"\1.branch.rnn."),  # TDC-RNN, TFC-RNN: the GRU
    (re.compile(_BLOCK + r"tif\."), r"\1.tdf.mlp."),  # TDF U-Net (Lightning): the TDF is the block
    (re.compile(r"^(decoders\.\d+)\.0\.tif\."), r"\1.tdf.mlp."),  # TDF U-Net decoder: Sequential(TDF, ...
    (re.compile(r"^(decoders\.\d+)\.1\."), r"\1.project."),  # ... 1x1 conv back to C channels)
]
# a recurrent block's dense convolutions (TIC_RNN.tic, TFC_RNN.tfc) are our `dense`; only in blocks with a GRU,
# since a TFC-TDF block's `tfc` keeps its name
_RECURRENT = re.compile(_BLOCK + r"rnn\.")
_RECURRENT_DENSE = re.compile(_BLOCK + r"(?:tic|tfc)\.")


def convert(state_dict: Mapping[str, Tensor], checkpoint: Any = None) -> Conversion:
    """Either generation's tensors under our names; ``checkpoint`` (the whole file) holds Lightning's
    hyper-parameters."""
    if any(key.startswith("spec2spec.") for key in state_dict):
        return _from_lightning(state_dict, checkpoint)
    return Conversion(_rename_blocks(state_dict), "ismir2020")


def _rename_key(key: str, recurrent: set[str]) -> str:
    dense = _RECURRENT_DENSE.match(key)
    if dense and dense.group(1) in recurrent:
        return f"{dense.group(1)}.dense.{key[dense.end():]}"
    for pattern, replacement in _BLOCK_RENAMES:
        renamed, found = pattern.subn(replacement, key, count=1)
        if found:
            return renamed
    return key


def _rename_blocks(tensors: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The authors' block attribute names → ours, for keys relative to the U-Net (see ``_BLOCK_RENAMES``)."""
    recurrent = {found.group(1) for key in tensors if (found := _RECURRENT.match(key))}
    return {_rename_key(key, recurrent): value for key, value in tensors.items()}


def _from_lightning(state: Mapping[str, Tensor], checkpoint: Any) -> Conversion:
    """``state``: the LightningModule's state_dict; ``checkpoint``: the whole file (its hyper-parameters)."""
    tensors: dict[str, Tensor] = {}
    for key, value in state.items():
        if key in _LIGHTNING_DROPPED:
            continue
        if key.startswith("spec2spec."):
            module, _, rest = key[len("spec2spec.") :].partition(".")
            key = f"{_LIGHTNING_MODULES.get(module, module)}.{rest}"
        tensors[key] = value  # anything outside spec2spec stays, and strict loading will name it
    tensors = _rename_blocks(tensors)
    first, last = "first_conv.0.weight", "final_conv.0.weight"
    if first in tensors:  # [out, in, 1, 2] over (T, F) → [out, in, 2, 1] over (F, T)
        tensors[first] = _cac_order(tensors[first], dim=1).transpose(2, 3).contiguous()
    if last in tensors:
        tensors[last] = _cac_order(tensors[last], dim=0).transpose(2, 3).contiguous()
    if "final_conv.0.bias" in tensors:
        tensors["final_conv.0.bias"] = _cac_order(tensors["final_conv.0.bias"], dim=0)
    return Conversion(tensors, "lightning", stft=_lightning_stft(checkpoint), implied_stft={"center": True},
                      format="lightning")


def _cac_order(weight: Tensor, dim: int) -> Tensor:
    """Lightning's [Re L, Re R, Im L, Im R] → our [Re L, Im L, Re R, Im R] along ``dim`` (CaC only)."""
    if weight.dim() <= dim or weight.shape[dim] != len(_CAC_FROM_LIGHTNING):
        return weight  # magnitude models have 2 channels [L, R] in both generations
    return weight.index_select(dim, torch.tensor(_CAC_FROM_LIGHTNING)).contiguous()


def _lightning_stft(checkpoint: Any) -> dict[str, Any]:
    """STFT settings from the saved hyper-parameters; the Lightning code always used a centred STFT."""
    if not isinstance(checkpoint, Mapping):
        return {}
    hparams = checkpoint.get("hyper_parameters") or checkpoint.get("hparams") or {}
    if not isinstance(hparams, Mapping):
        return {}
    names = {"n_fft": "n_fft", "hop_length": "hop_length", "num_frame": "frames"}
    stft: dict[str, Any] = {ours: hparams[theirs] for theirs, ours in names.items()
                            if isinstance(hparams.get(theirs), int) and not isinstance(hparams.get(theirs), bool)}
    if stft:
        stft["center"] = True
    return stft
