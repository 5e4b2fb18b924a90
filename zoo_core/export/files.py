"""Writing export files so that a reader never sees half of one, and quieting TorchScript's deprecation."""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import Iterator

from ..errors import ZooError


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """A temporary file next to ``path``, moved over ``path`` only when the block finishes without error.

    Creating it up front also tells, before any slow work, whether ``path`` can be written at all.
    """
    if path.is_dir():
        raise ZooError(f"cannot write {path}: it is a folder")
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    except OSError as exc:
        raise ZooError(f"cannot write {path}: {exc.strerror}") from None
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)  # mkstemp's 0600 would otherwise reach the final file
    try:
        yield Path(temporary)
        try:
            os.replace(temporary, path)
        except OSError as exc:
            raise ZooError(f"cannot write {path}: {exc.strerror}", exit_code=1) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


@contextlib.contextmanager
def torchscript_deprecation_silenced() -> Iterator[None]:
    """TorchScript is deprecated upstream but is still the C++ deployment path; hide exactly that notice."""
    with warnings.catch_warnings():
        for category in (DeprecationWarning, FutureWarning):
            warnings.filterwarnings(
                "ignore", message=r"`torch\.jit\.(script|save|load|freeze)` is deprecated", category=category
            )
        yield
