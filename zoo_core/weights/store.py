"""The cache's file format: safetensors with string metadata, plus a ``.sha256`` record checked on every read.

Writes go to temporary names in the same folder and are renamed into place (record last), so a reader
never sees half a file; a missing or disagreeing record means the file is not to be trusted.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Mapping, Optional

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes
from torch import Tensor

from ..errors import ZooError
from .cache import hash_record_path
from .hashing import sha256_file


def write_weights(path: Path, tensors: Mapping[str, Tensor], metadata: Mapping[str, str]) -> str:
    """Store ``tensors`` at ``path`` with ``metadata``; returns the file's SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    record = hash_record_path(path)
    weights_tmp = record_tmp = ""
    try:
        weights_tmp, record_tmp = _temporary(path), _temporary(record)
        # own, contiguous storage per tensor: safetensors refuses views that share memory
        owned = {key: value.detach().clone(memory_format=torch.contiguous_format) for key, value in tensors.items()}
        data = safetensors_bytes(owned, metadata=dict(metadata))  # written by us: save_file would make it 0600
        digest = hashlib.sha256(data).hexdigest()
        Path(weights_tmp).write_bytes(data)
        Path(record_tmp).write_text(f"{digest}  {path.name}\n", encoding="ascii")
        os.replace(weights_tmp, path)
        os.replace(record_tmp, record)
    except OSError as exc:
        raise ZooError(f"cannot write {path}: {exc.strerror or exc}", exit_code=1) from None
    finally:
        for leftover in (weights_tmp, record_tmp):
            if leftover and os.path.exists(leftover):
                os.unlink(leftover)
    return digest


def read_weights(path: Path, remedy: str) -> tuple[dict[str, Tensor], dict[str, str], str]:
    """``(tensors, metadata, sha256)`` of a cached file whose SHA-256 matches its record.

    ``remedy`` (e.g. "run `zoo pull tdc-17:top1` again") ends the message when the file is missing or damaged.
    """
    recorded = recorded_sha256(path)
    if not path.is_file() or recorded is None:
        raise ZooError(f"{path} is missing or incomplete; {remedy}", exit_code=1)
    digest = sha256_file(path)
    if digest != recorded:
        raise ZooError(f"{path} is corrupt (SHA-256 {digest}, its record says {recorded}); {remedy}", exit_code=1)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError) as exc:
        raise ZooError(f"{path} is not a readable safetensors file ({exc}); {remedy}", exit_code=1) from None
    return tensors, metadata, digest


def recorded_sha256(path: Path) -> Optional[str]:
    """The SHA-256 recorded for a cached file, or None without a record."""
    try:
        fields = hash_record_path(path).read_text(encoding="ascii", errors="replace").split()
    except OSError:
        return None
    return fields[0] if fields else None


def is_intact(path: Path) -> bool:
    """The file exists and its SHA-256 matches its record."""
    recorded = recorded_sha256(path)
    return recorded is not None and path.is_file() and sha256_file(path) == recorded


def _temporary(path: Path) -> str:
    """A fresh name beside ``path``; files created under it get the usual permissions (mkstemp's are 0600)."""
    return str(path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp"))
