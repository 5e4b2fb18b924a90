"""File digests: SHA-256, and git's blob SHA-1 (what ``git hash-object`` prints) to match files in a repository.
A leaf module: the artifact path (which loads no model code) hashes its file too."""

from __future__ import annotations

import hashlib
from pathlib import Path

_BLOCK = 1 << 20


def _digest(path: Path, *hashes) -> None:
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK):
            for h in hashes:
                h.update(block)


def file_digests(path: Path) -> tuple[str, str]:
    """``(git_blob_sha1, sha256)`` of a file, read once."""
    sha1 = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    sha256 = hashlib.sha256()
    _digest(path, sha1, sha256)
    return sha1.hexdigest(), sha256.hexdigest()


def sha256_file(path: Path) -> str:
    sha256 = hashlib.sha256()
    _digest(path, sha256)
    return sha256.hexdigest()
