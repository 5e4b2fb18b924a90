"""The authors' original checkpoints → the state_dict of svs-zoo's ``model.unet``.

The two generations of the authors' code, and our own files:

* ``ismir2020`` (the paper's code): the keys already are ours, except inside blocks whose attributes we name
  differently (see ``_BLOCK_RENAMES``: the TDF of TFC-TDF, the dense block and recurrent branch of TFC-RNN and
  TDC-RNN). Stored
  as a plain state_dict (format ``state_dict``) or saved from ``nn.DataParallel`` with every key prefixed
  ``module.`` (format ``dataparallel``).
* ``lightning`` (the refactored code): a Lightning checkpoint whose ``state_dict`` holds the U-Net under
  ``spec2spec.`` plus the STFT window. Its U-Net reads ``[B, 4, T, F]`` with channels
  ``[Re L, Re R, Im L, Im R]`` through (1, 2) first/last kernels; ours reads ``[B, 4, F, T]`` with
  ``[Re L, Im L, Re R, Im R]`` through (2, 1) kernels, so those two convolutions are transposed and their
  CaC channels permuted. Both U-Nets see all n_fft/2 + 1 bins (``Dense_UNET_Framework.separate`` feeds them
  all; the DC-dropping ``separate`` of its base class is overridden). Its blocks use the same attribute names
  as the paper's code, plus those of its TDF U-Net (the TDF is the block; a decoder is ``Sequential(TDF,
  1x1 conv)``).
* ``svs-zoo``: a safetensors file already in our names (what ``zoo train`` writes); STFT settings, if any,
  come from its ``stft`` metadata (JSON). Also the ``state_dict()`` of svs-zoo's own Python model (every key
  under ``unet.``), which records no STFT settings.
* An architecture's own original layouts (e.g. TFC-TDF-UNet v3's reference code): its plugin's ``convert``
  recognises and renames them (`zoo_core.architectures.Architecture.convert`).

Whatever the layout, the state_dict may sit in a training script's wrapper (``state_dict``,
``model_state_dict`` or ``state``: a dict holding it beside optimiser state and the like) and every key may
carry a ``module.`` (``nn.DataParallel``, ``DistributedDataParallel``) or ``model.`` (a wrapping module's
attribute) prefix; `unwrap` removes both before the layout is recognised. A safetensors file without svs-zoo's
``stft`` metadata is recognised the same way from its tensor names.

PyTorch files are read with ``torch.load(weights_only=True)``: a file that needs arbitrary unpickling is
refused, never executed.
"""

from __future__ import annotations

import json
import pickle
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor

from ..errors import ZooError, first_line

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
_WRAPPERS = ("state_dict", "model_state_dict", "state")  # the dict keys training scripts store a state_dict under
_PREFIXES = ("module.", "model.")  # DataParallel/DistributedDataParallel, a wrapping module's attribute
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors", ".bin", ".th")
_LISTED = 5  # checkpoint files named when a folder is given
_UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")


@dataclass(frozen=True)
class Converted:
    tensors: dict[str, Tensor]  # in svs-zoo's ``model.unet`` names
    format: str  # "state_dict", "dataparallel", "lightning" or "safetensors"
    layout: str  # "ismir2020", "lightning", "svs-zoo", or an architecture's own
    stft: Mapping[str, Any] = field(default_factory=dict)  # STFT settings the checkpoint records, if any


# an architecture's converter: the loaded file (any wrapping) -> (our tensors, layout), or None (see
# zoo_core.architectures.Architecture.convert)
ArchitectureConvert = Callable[[Any], Optional[tuple[dict[str, Tensor], str]]]


def checkpoint_file(path: str | Path) -> Path:
    """``path`` as a checkpoint file that exists; a folder is refused with the checkpoint files it holds."""
    source = Path(path).expanduser()
    if source.is_dir():
        found = sorted(p.name for p in source.iterdir() if p.suffix.lower() in _CHECKPOINT_SUFFIXES and p.is_file())
        listed = ", ".join(found[:_LISTED]) + (", ..." if len(found) > _LISTED else "")
        inside = f": {listed}" if found else f" (it holds no {', '.join(_CHECKPOINT_SUFFIXES)} file)"
        raise ZooError(f"{source} is a folder; give the checkpoint file inside it{inside}")
    if not source.is_file():
        raise ZooError(f"{source}: no such checkpoint file")
    return source


def read_checkpoint(path: Path, architecture_convert: Optional[ArchitectureConvert] = None) -> Converted:
    """Load an original checkpoint safely and convert it (see the module docstring); ``architecture_convert`` is
    the model's architecture's own converter, tried first."""
    if _is_safetensors(path):
        return _from_safetensors(path, architecture_convert)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = _UNSUPPORTED_GLOBAL.search(str(exc))
        what = f" (it contains {found.group(1)})" if found else ""
        raise ZooError(
            f"{path} needs arbitrary unpickling to load{what}, which could run code; svs-zoo refuses it. "
            "If you trust the file, convert it in a trusted environment: torch.load(path, weights_only=False), "
            "then torch.save(the state_dict alone) and import that"
        ) from None
    except FileNotFoundError:
        raise ZooError(f"{path}: no such file") from None
    except IsADirectoryError:
        checkpoint_file(path)  # says what the folder holds
        raise ZooError(f"{path} is a folder, not a checkpoint file") from None
    except Exception as exc:  # torch raises many kinds for a damaged or foreign file
        raise ZooError(f"{path} is not a readable PyTorch checkpoint ({first_line(exc, with_type=True)})") from None
    return convert(obj, str(path), architecture_convert)


def convert(obj: Any, source: str, architecture_convert: Optional[ArchitectureConvert] = None) -> Converted:
    """Recognise the checkpoint's layout from its contents and convert it; ``source`` names it in errors."""
    tensors, wrappers, prefixes = unwrap(obj, source)
    if architecture_convert is not None:
        own = architecture_convert(tensors)
        if own is not None:
            converted, layout = own
            return Converted(_state_dict(converted, source), _format(wrappers, prefixes), layout)
    if any(key.startswith("spec2spec.") for key in tensors):
        return _from_lightning(tensors, obj)
    if tensors and all(key.startswith("unet.") for key in tensors):
        return Converted(_strip(tensors, "unet."), _format(wrappers, prefixes), "svs-zoo")
    return Converted(_from_ismir2020(tensors), _format(wrappers, prefixes), "ismir2020")


def unwrap(obj: Any, source: str) -> tuple[dict[str, Tensor], list[str], list[str]]:
    """``(state_dict, wrappers, prefixes)``: the state_dict inside ``obj`` (see the module docstring), the wrapper
    keys descended through and the key prefixes removed, outermost first."""
    wrappers: list[str] = []
    while isinstance(obj, Mapping) and not all(isinstance(value, Tensor) for value in obj.values()):
        wrapper = next((key for key in _WRAPPERS if isinstance(obj.get(key), Mapping)), None)
        if wrapper is None:
            break
        wrappers.append(wrapper)
        obj = obj[wrapper]
    tensors = _state_dict(obj, source)
    prefixes: list[str] = []
    while (prefix := next((p for p in _PREFIXES if tensors and all(k.startswith(p) for k in tensors)), None)):
        prefixes.append(prefix)
        tensors = _strip(tensors, prefix)
    return tensors, wrappers, prefixes


def _format(wrappers: list[str], prefixes: list[str]) -> str:
    """How the weights were stored, for the cache's metadata."""
    if wrappers:
        return "checkpoint"
    return "dataparallel" if "module." in prefixes else "state_dict"


def _is_safetensors(path: Path) -> bool:
    """safetensors files start with an 8-byte little-endian header size, then the JSON header."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(9)
        return len(head) == 9 and head[8:] == b"{" and int.from_bytes(head[:8], "little") < path.stat().st_size
    except OSError:
        return False


def _from_safetensors(path: Path, architecture_convert: Optional[ArchitectureConvert] = None) -> Converted:
    """svs-zoo's own file (its ``stft`` metadata says so) as it is; any other safetensors file by its names."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError) as exc:
        raise ZooError(f"{path} is not a readable safetensors file ({exc})") from None
    if "stft" not in metadata:
        return replace(convert(tensors, str(path), architecture_convert), format="safetensors")
    try:
        stft = json.loads(metadata["stft"])
    except ValueError:
        stft = None
    if not isinstance(stft, dict):
        raise ZooError(f"{path}: its 'stft' metadata is not a JSON object: {metadata['stft']!r}")
    return Converted(tensors, "safetensors", "svs-zoo", stft)


def _state_dict(obj: Any, source: str) -> dict[str, Tensor]:
    if not isinstance(obj, Mapping):
        raise ZooError(f"{source} holds a {type(obj).__name__}, not a state_dict or a checkpoint holding one")
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, Tensor):
            raise ZooError(
                f"{source} is not a state_dict, nor a checkpoint holding one under {', '.join(map(repr, _WRAPPERS))}: "
                f"entry {key!r} is a {type(value).__name__}, not a tensor"
            )
    return dict(obj)


def _strip(tensors: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {key[len(prefix) :] if key.startswith(prefix) else key: value for key, value in tensors.items()}


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


def _from_ismir2020(tensors: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return _rename_blocks(tensors)


def _from_lightning(state: Mapping[str, Tensor], checkpoint: Any) -> Converted:
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
    return Converted(tensors, "lightning", "lightning", _lightning_stft(checkpoint))


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
