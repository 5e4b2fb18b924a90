"""Weights files: safetensors with string metadata; in the cache, plus a ``.sha256`` record checked on every read.

Writes are atomic (`zoo_core.files`), the record last, so a reader never sees half a file; a missing or
disagreeing record means the cached file is not to be trusted.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Mapping, Optional

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes
from torch import Tensor

from ..errors import ZooError
from ..files import write_bytes_atomically, write_text_atomically
from .cache import hash_record_path
from ..hashing import sha256_file


def write_safetensors(path: Path, tensors: Mapping[str, Tensor], metadata: Mapping[str, str]) -> str:
    """A safetensors file of ``tensors`` (moved to the CPU, contiguous) with string ``metadata``, written
    atomically; returns its SHA-256. What ``zoo train`` leaves in a run folder."""
    # own, contiguous storage per tensor: safetensors refuses views that share memory
    owned = {key: value.detach().to("cpu").clone(memory_format=torch.contiguous_format) for key, value in tensors.items()}
    data = safetensors_bytes(owned, metadata=dict(metadata))
    write_bytes_atomically(path, data)
    return hashlib.sha256(data).hexdigest()


def write_cached(path: Path, tensors: Mapping[str, Tensor], metadata: Mapping[str, str]) -> str:
    """A cache entry: the safetensors file, then its ``.sha256`` record (a reader trusts the file only when both
    exist and agree, so the record is written last). Returns the SHA-256."""
    digest = write_safetensors(path, tensors, metadata)
    write_text_atomically(hash_record_path(path), f"{digest}  {path.name}\n")
    return digest


def read_weights(path: Path, remedy: str) -> tuple[dict[str, Tensor], dict[str, str], str]:
    """``(tensors, metadata, sha256)`` of a cached file whose SHA-256 matches its record.

    ``remedy`` (e.g. "run `zoo pull NAME:VARIANT` again") ends the message when the file is missing or damaged.
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


def read_metadata(path: Path) -> dict[str, str]:
    """The string metadata of a safetensors file (without reading its tensors)."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError) as exc:
        raise ZooError(f"{path} is not a readable safetensors file ({exc})", exit_code=1) from None


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


