"""Writing files so that nothing a user had is lost or half-written: the one way svs-zoo writes a file (and
appends a line to a manifest, `append_line`).

`atomic_path(path)` yields a hidden temporary name; whatever the block writes there is moved to ``path`` with
one ``os.replace`` when the block succeeds, and removed when it fails or is interrupted (Ctrl-C, SIGTERM: the
CLI turns SIGTERM into `Terminated`, so cleanup runs). A reader never sees a partial file under its final name,
and an earlier file of that name stays intact until the new one is complete.

The temporary lives in the deepest folder of ``path`` that already exists, and the missing folders are made
only when the file lands, so an interrupted command leaves no empty output folders behind. Files get the
usual permissions (``0o666`` minus the umask), not ``mkstemp``'s ``0o600``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import ZooError


def existing_ancestor(path: Path) -> Path:
    """The deepest folder among ``path``'s parents that exists."""
    folder = Path(path).absolute().parent
    while not folder.exists():
        folder = folder.parent
    return folder


def check_writable(path: Path, what: str = "") -> None:
    """Raise a one-line `ZooError` now if ``path`` could not be written later (before any slow work)."""
    path = Path(path)
    label = f"{what} " if what else ""
    if path.is_dir():
        raise ZooError(f"cannot write {label}{path}: it is a folder", exit_code=2)
    folder = existing_ancestor(path)
    if not folder.is_dir():
        raise ZooError(f"cannot write {label}{path}: {folder} is a file, not a folder", exit_code=2)
    refused = cannot_create_in(folder)
    if refused:
        raise ZooError(f"cannot write {label}{path}: cannot create a file in {folder} ({refused})", exit_code=2)


def check_writable_folder(folder: Path, what: str = "output folder") -> None:
    """Raise a one-line `ZooError` now if files could not be written under ``folder`` (it may not exist yet)."""
    folder = Path(folder)
    ancestor = folder if folder.exists() else existing_ancestor(folder)
    if not ancestor.is_dir():
        raise ZooError(f"cannot use {folder} as the {what}: {ancestor} is a file, not a folder", exit_code=2)
    refused = cannot_create_in(ancestor)
    if refused:
        raise ZooError(f"cannot use {folder} as the {what}: cannot create a file in {ancestor} ({refused})", exit_code=2)


def cannot_create_in(folder: Path) -> str:
    """Why no file can be created in ``folder``, or "" when one can. It tries: ``os.access`` answers yes to root
    everywhere, on read-only and virtual file systems too. The probe is nameless where the system allows
    (``O_TMPFILE``), else removed at once."""
    try:
        tempfile.TemporaryFile(prefix=".writable-probe-", dir=folder).close()
    except OSError as exc:
        return exc.strerror or str(exc)
    return ""


def temporary_path(path: Path) -> Path:
    """A hidden, unique name for ``path``'s temporary, on the same file system (so the final rename is atomic):
    ``.NAME.<random>.part`` plus NAME's suffix, for writers that insist on one (AOTInductor wants ``.pt2``)."""
    path = Path(path)
    return existing_ancestor(path) / f".{path.name}.{secrets.token_hex(4)}.part{path.suffix}"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary name for ``path``, moved over ``path`` when the block finishes without an exception."""
    path = Path(path)
    check_writable(path)
    temporary = temporary_path(path)
    try:
        yield temporary
        if not temporary.exists():
            raise ZooError(f"nothing was written for {path}", exit_code=1)
        os.chmod(temporary, 0o666 & ~_umask())  # writers that use mkstemp would otherwise leave 0600
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temporary, path)
    except OSError as exc:
        raise ZooError(f"cannot write {path}: {exc.strerror or exc}", exit_code=1) from None
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()
        if temporary.is_dir():  # some writers (AOTInductor packaging) may leave a folder behind on failure
            import shutil

            shutil.rmtree(temporary, ignore_errors=True)


def write_bytes_atomically(path: Path, data: bytes) -> None:
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def write_text_atomically(path: Path, text: str) -> None:
    write_bytes_atomically(path, text.encode("utf-8"))


def append_line(path: Path, line: str) -> None:
    """Append one line to a log-like file (a manifest): the whole line goes in one ``write`` on a file opened
    for appending, so concurrent appenders on a local disk never interleave and a crash can tear only the last
    line (readers skip a torn line). The file and its folders are created on the first line."""
    path = Path(path)
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            written = os.write(descriptor, data)
        finally:
            os.close(descriptor)
    except OSError as exc:
        raise ZooError(f"cannot append to {path}: {exc.strerror or exc}", exit_code=1) from None
    if written != len(data):
        raise ZooError(f"cannot append to {path}: only {written} of {len(data)} bytes were written", exit_code=1)
