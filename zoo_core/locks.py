"""Locks between processes: filelock's ``flock`` on a lock file that is removed again on release.

A lock file that stayed behind would be one more file a user trips over (``top1.lock`` in the weights cache,
``.zoo.lock`` in an output folder), so the holder removes it while it still holds the lock. A process waiting
on the removed file then holds a lock on a file without a name; filelock notices (the file has no links left)
and starts over on a new file, so two holders never overlap. A process killed outright leaves the file; the
next holder takes it over and removes it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from .errors import ZooError


class Busy(ZooError):
    """Another process holds the lock (raised only when not waiting)."""


@contextlib.contextmanager
def exclusive(path: Path, *, wait: bool = True, busy: str = "") -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (its folder must exist) for the ``with`` block: wait for it,
    or raise `Busy` with the message ``busy`` when another process holds it and ``wait`` is False."""
    import filelock

    path = Path(path)
    lock = filelock.FileLock(str(path))
    try:
        lock.acquire(blocking=wait)
    except filelock.Timeout:
        raise Busy(busy or f"{path} is locked by another process", exit_code=1) from None
    except OSError as exc:
        raise ZooError(f"cannot lock {path}: {exc.strerror or exc}", exit_code=1) from None
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # while still held: see the module's note
        lock.release()
