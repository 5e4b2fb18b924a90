"""Writing files so that nothing a user had is lost or half-written: the one way svs-zoo writes a file (and
appends a line to a manifest, `append_line`).

`atomic_path(path)` yields a hidden temporary name; whatever the block writes there is moved to ``path`` with
one ``os.replace`` when the block succeeds, and removed when it fails or is interrupted (Ctrl-C, SIGTERM: the
CLI turns SIGTERM into `Terminated`, so cleanup runs). A reader never sees a partial file under its final name,
and an earlier file of that name stays intact until the new one is complete.

The temporary lives in ``path``'s own folder, never above it: the folders missing on the way are made for it
and removed again when the write fails or is interrupted, so an interrupted command leaves neither a temporary
nor an empty folder behind. Only a process killed outright (SIGKILL, out of memory) can leave a temporary; its
name, ``.NAME.<8 hex digits>.part`` plus NAME's suffix, is the zoo's alone, and the next write of ``path``
removes it (`remove_stale_temporaries`; a catalogue run sweeps its whole output tree). Files get the usual
permissions (``0o666`` minus the umask), not ``mkstemp``'s ``0o600``.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

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
    """A hidden, unique name for ``path``'s temporary in ``path``'s own folder (the same file system, so the final
    rename is atomic): ``.NAME.<random>.part`` plus NAME's suffix, for writers that insist on one (AOTInductor
    wants ``.pt2``)."""
    path = Path(path)
    return path.parent / f".{path.name}.{secrets.token_hex(4)}.part{path.suffix}"


# `temporary_path`'s names: the final name, 8 hex digits, ".part" and the final name's suffix again
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{8}\.part(?P<suffix>(\.[^.]*)?)")


def temporary_of(name: str) -> Optional[str]:
    """The final name whose temporary ``name`` is (``.vocals.wav.1a2b3c4d.part.wav`` → ``vocals.wav``), or None
    for any other name."""
    match = _TEMPORARY.fullmatch(name)
    if match is None or Path(match["name"]).suffix != match["suffix"]:
        return None
    return match["name"]


def remove_stale_temporaries(folder: Path, names: Optional[Iterable[str]] = None) -> list[Path]:
    """Remove the temporaries a killed writer left in ``folder`` (not below it): of the final ``names`` only, or
    every one when ``names`` is None. Nothing else is touched. Returns what was removed."""
    folder = Path(folder)
    wanted = None if names is None else set(names)
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:  # no such folder (yet), or not one we may read: nothing of ours is there
        return removed
    for entry in entries:
        final = temporary_of(entry.name)
        if final is None or (wanted is not None and final not in wanted):
            continue
        path = Path(entry.path)
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):  # some writers (AOTInductor packaging) leave a folder
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
    return removed


def make_folders(folder: Path) -> list[Path]:
    """Make ``folder`` and its missing parents; returns the folders this call made, outermost first (what
    `remove_empty_folders` may take away again)."""
    missing = []
    current = Path(folder).absolute()
    while not current.exists():
        missing.append(current)
        current = current.parent
    made = []
    for current in reversed(missing):
        try:
            os.mkdir(current)
        except FileExistsError:  # another process made it meanwhile: it is not ours to remove
            continue
        made.append(current)
    return made


def remove_empty_folders(folders: Sequence[Path]) -> None:
    """Remove ``folders`` (outermost first, as `make_folders` returns them), innermost first, while empty."""
    for folder in reversed(folders):
        try:
            os.rmdir(folder)
        except OSError:  # not empty (another writer's files) or gone: the folders above are not empty either
            return


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary name for ``path``, moved over ``path`` when the block finishes without an exception."""
    path = Path(path)
    check_writable(path)
    try:
        made = make_folders(path.parent)
    except OSError as exc:
        raise ZooError(f"cannot write {path}: {exc.strerror or exc}", exit_code=1) from None
    remove_stale_temporaries(path.parent, [path.name])
    temporary = temporary_path(path)
    landed = False
    try:
        yield temporary
        if not temporary.exists():
            raise ZooError(f"nothing was written for {path}", exit_code=1)
        os.chmod(temporary, 0o666 & ~_umask())  # writers that use mkstemp would otherwise leave 0600
        os.replace(temporary, path)
        landed = True
    except OSError as exc:
        raise ZooError(f"cannot write {path}: {exc.strerror or exc}", exit_code=1) from None
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()
        if temporary.is_dir():  # some writers (AOTInductor packaging) may leave a folder behind on failure
            shutil.rmtree(temporary, ignore_errors=True)
        if not landed:
            remove_empty_folders(made)


def write_bytes_atomically(path: Path, data: bytes) -> None:
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def write_text_atomically(path: Path, text: str) -> None:
    write_bytes_atomically(path, text.encode("utf-8"))


def append_line(path: Path, line: str) -> None:
    """Append one line to a log-like file (a manifest): the whole line goes in one ``write`` on a file opened
    for appending, under an exclusive ``flock`` of the file, so appenders never interleave and a crash can tear
    only the last line (readers skip a torn line; the next line then starts on a line of its own). A file
    renamed away while we waited for its lock (a manifest shard being folded, `zoo_core.manifest`) is not
    written: the line goes to a new file under ``path``. The file and its folders are created on the first line."""
    path = Path(path)
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            descriptor = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
            try:
                lock_if_possible(descriptor)
                if not _still_at(descriptor, path):
                    continue
                size = os.fstat(descriptor).st_size
                torn = size > 0 and os.pread(descriptor, 1, size - 1) != b"\n"
                payload = b"\n" + data if torn else data
                written = os.write(descriptor, payload)
                break
            finally:
                os.close(descriptor)  # and with it the lock
    except OSError as exc:
        raise ZooError(f"cannot append to {path}: {exc.strerror or exc}", exit_code=1) from None
    if written != len(payload):
        raise ZooError(f"cannot append to {path}: only {written} of {len(payload)} bytes were written", exit_code=1)


def lock_if_possible(descriptor: int) -> None:
    """An exclusive ``flock`` of an open file, released when it is closed; skipped on a file system without
    locks (single writers stay correct there, as before)."""
    import errno
    import fcntl

    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
    except OSError as exc:
        if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            raise


def _still_at(descriptor: int, path: Path) -> bool:
    """Whether the open file is still the one named ``path`` (not renamed or removed since it was opened)."""
    try:
        return os.path.samestat(os.fstat(descriptor), os.stat(path))
    except FileNotFoundError:
        return False
