"""Checkpoint files → the state_dict of a model's ``network``, in the zoo's tensor names.

Whatever the layout, the state_dict may sit in a training script's wrapper (``state_dict``,
``model_state_dict`` or ``state``: a dict holding it beside optimiser state and the like) and every key may
carry a ``module.`` (``nn.DataParallel``, ``DistributedDataParallel``) or ``model.`` (a wrapping module's
attribute) prefix; `unwrap` removes both before the layout is recognised. Then, in order:

* ``svs-zoo``: the ``state_dict()`` of the zoo's own Python model (every key under ``network.``, or under the
  name releases before 0.2 gave it, `zoo_core.model.LEGACY_NETWORK_NAME`), which records no STFT settings; or a safetensors file in our names with the
  zoo's ``stft`` metadata (JSON), what ``zoo train`` writes.
* the layouts of the model's architecture: its plugin's ``convert`` recognises released checkpoints (other
  code's tensor names) and renames them (`zoo_core.architectures.Architecture.convert`);
* otherwise the tensors as they are (layout ``state_dict``), and strict loading names any mismatch.

A safetensors file without the zoo's ``stft`` metadata is recognised the same way from its tensor names.
PyTorch files are read with ``torch.load(weights_only=True)``: a file that needs arbitrary unpickling is
refused, never executed.
"""

from __future__ import annotations

import inspect
import json
import pickle
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor

from ..architectures import Conversion
from ..errors import ZooError, first_line
from ..model import LEGACY_NETWORK_NAME

_WRAPPERS = ("state_dict", "model_state_dict", "state")  # the dict keys training scripts store a state_dict under
_PREFIXES = ("module.", "model.")  # DataParallel/DistributedDataParallel, a wrapping module's attribute
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors", ".bin", ".th")
_LISTED = 5  # checkpoint files named when a folder is given
_UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")


OWN_PREFIXES = ("network.", LEGACY_NETWORK_NAME + ".")  # our model's state_dict() keys, now and before 0.2


@dataclass(frozen=True)
class Converted:
    tensors: dict[str, Tensor]  # in the names of the model's ``network``
    format: str  # how it was stored: "state_dict", "dataparallel", "checkpoint", "safetensors" or a family's own
    layout: str  # whose tensor names: "svs-zoo", "state_dict" or an architecture's own layout
    stft: Mapping[str, Any] = field(default_factory=dict)  # STFT settings the checkpoint records, if any
    implied_stft: Mapping[str, Any] = field(default_factory=dict)  # settings its layout implies (see Conversion)


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


def read_checkpoint(path: Path, architecture_convert: Optional[Callable] = None) -> Converted:
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


def convert(obj: Any, source: str, architecture_convert: Optional[Callable] = None) -> Converted:
    """Recognise the checkpoint's layout from its contents and convert it; ``source`` names it in errors."""
    tensors, wrappers, prefixes = unwrap(obj, source)
    stored = _format(wrappers, prefixes)
    for prefix in OWN_PREFIXES:
        if tensors and all(key.startswith(prefix) for key in tensors):
            return Converted(_strip(tensors, prefix), stored, "svs-zoo")
    if architecture_convert is not None:
        found = call_converter(architecture_convert, tensors, obj)
        if found is not None:
            return Converted(_state_dict(found.tensors, source), found.format or stored, found.layout,
                             dict(found.stft), dict(found.implied_stft))
    return Converted(tensors, stored, "state_dict")


def call_converter(converter: Callable, tensors: dict[str, Tensor], checkpoint: Any) -> Optional[Conversion]:
    """An architecture's ``convert``: given the whole loaded file too when it takes a second argument (a
    family whose checkpoints record settings beside the tensors); a ``(tensors, layout)`` pair is accepted."""
    try:
        takes_checkpoint = len(inspect.signature(converter).parameters) > 1
    except (TypeError, ValueError):  # a builtin or C callable: the state_dict alone
        takes_checkpoint = False
    found = converter(tensors, checkpoint) if takes_checkpoint else converter(tensors)
    if found is None or isinstance(found, Conversion):
        return found
    converted, layout = found
    return Conversion(dict(converted), layout)


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


def _from_safetensors(path: Path, architecture_convert: Optional[Callable] = None) -> Converted:
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
