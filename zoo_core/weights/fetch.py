"""Getting an original checkpoint file: from a mirror folder or the network, verified byte for byte.

``ZOO_WEIGHTS_MIRROR=DIR`` (a folder holding the original file names) replaces the network entirely, for
tests and offline machines. ``ZOO_OFFLINE=1`` forbids network downloads. A ``file:`` URL (weights a plugin
package ships, a training run's card) is no download: it is read in place, mirror or not. A file is written
under a temporary name and renamed only once its git blob SHA-1 (and SHA-256, where the registry has it)
match, so an interrupted or corrupted transfer never leaves a file under the final name.
"""

from __future__ import annotations

import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Optional

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from ..errors import ZooError
from ..registry import WeightVariant
from ..hashing import file_digests

TIMEOUT_S = 30
_CHUNK = 1 << 16
# a pull's stages for a caller that shows them (the web page): report(stage, bytes done, bytes in all or None),
# stage "download" (repeatedly, as bytes arrive), "verify" (hashing against the registry), "convert"
Report = Callable[[str, int, Optional[int]], None]
MIRROR_HINT = "set ZOO_WEIGHTS_MIRROR=DIR to a folder holding the original files"


def mirror_dir() -> Optional[Path]:
    """The configured mirror folder, or None; a setting that is not a folder is an error."""
    configured = os.environ.get("ZOO_WEIGHTS_MIRROR")
    if not configured:
        return None
    path = Path(configured).expanduser()
    if not path.is_dir():
        raise ZooError(f"ZOO_WEIGHTS_MIRROR={configured} is not a folder")
    return path


def network_allowed() -> bool:
    return os.environ.get("ZOO_OFFLINE", "").lower() not in ("1", "true", "yes")


def can_fetch(variant: Optional[WeightVariant] = None) -> bool:
    """Whether `fetch_original` may succeed (for ``variant``, if given) without the user doing anything first."""
    return (variant is not None and local_file(variant) is not None) or mirror_dir() is not None or network_allowed()


def local_file(variant: WeightVariant) -> Optional[Path]:
    """The file a ``file:`` URL names, or None for any other URL."""
    parts = urllib.parse.urlsplit(variant.url)
    if parts.scheme != "file":
        return None
    return Path(urllib.request.url2pathname(parts.path))


def fetch_original(
    variant: WeightVariant, label: str, folder: Path, progress: bool = True, report: Optional[Report] = None
) -> Path:
    """Copy or download ``variant``'s original file into ``folder`` under its original name and verify it.

    ``label`` (``model:variant``) only appears in messages; ``report`` hears the stages (`Report`). Returns the
    verified file.
    """
    report = report or (lambda stage, done, total: None)
    local = local_file(variant)
    mirror = mirror_dir() if local is None else None
    final = folder / original_name(variant, label)
    handle, temporary = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(handle, "wb") as target:
            if local is not None:
                _copy_file(local, f"{label}'s weights file {local} does not exist", target, report)
            elif mirror is not None:
                _copy_from_mirror(mirror, variant, label, target, report)
            elif network_allowed():
                _download(variant, label, final.name, target, progress, report)
            else:
                raise ZooError(f"ZOO_OFFLINE is set, so {final.name} cannot be downloaded; {MIRROR_HINT}", exit_code=1)
        report("verify", 0, None)
        verify(Path(temporary), variant, label)
        os.replace(temporary, final)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return final


def original_name(variant: WeightVariant, label: str) -> str:
    """The original file's name (what a mirror folder holds): ``file``, else the URL's last part."""
    name = Path(variant.file or urllib.parse.urlsplit(variant.url).path).name
    if not name:
        raise ZooError(f"{label} names no file or URL to get its weights from", exit_code=1)
    return name


def verify(path: Path, variant: WeightVariant, label: str) -> None:
    """Raise unless the file's git blob SHA-1 and SHA-256 match the registry (the caller deletes it). A variant
    whose publisher gave no hash is taken with a warning that says so and names the SHA-256 it has now (the
    cache records it, so a later change of the file is noticed)."""
    git_sha1, sha256 = file_digests(path)
    if not (variant.git_sha1 or variant.sha256):
        sys.stderr.write(
            f"warning: {path.name} for {label} could not be verified against a known hash (none is published); "
            f"its SHA-256 is {sha256}, recorded with the cached weights\n"
        )
        return
    for kind, expected, got in (("git blob SHA-1", variant.git_sha1, git_sha1), ("SHA-256", variant.sha256, sha256)):
        if expected and expected != got:
            raise ZooError(
                f"the original file of {label} failed verification: {kind} expected {expected}, got {got}; "
                "the file was refused and deleted",
                exit_code=1,
            )


def _copy_from_mirror(mirror: Path, variant: WeightVariant, label: str, target: BinaryIO, report: Report) -> None:
    source = mirror / original_name(variant, label)
    _copy_file(source, f"the weights mirror {mirror} has no {source.name} (needed for {label})", target, report)


def _copy_file(source: Path, missing: str, target: BinaryIO, report: Report) -> None:
    if not source.is_file():
        raise ZooError(missing, exit_code=1)
    total, done = source.stat().st_size, 0
    with open(source, "rb") as reader:
        while block := reader.read(_CHUNK):
            target.write(block)
            done += len(block)
            report("download", done, total)


def _download(
    variant: WeightVariant, label: str, file_name: str, target: BinaryIO, progress: bool, report: Report
) -> None:
    hint = f"run `zoo pull {label}` when online, or {MIRROR_HINT} ({file_name}), or `zoo import` a local copy"
    if not variant.url:
        raise ZooError(f"{file_name} has no download URL; {hint}", exit_code=1)
    try:
        with urllib.request.urlopen(variant.url, timeout=TIMEOUT_S) as response:
            total = int(response.headers.get("Content-Length") or 0) or variant.bytes
            done = 0
            with _progress(progress, file_name, total) as advance:
                while block := response.read(_CHUNK):
                    target.write(block)
                    advance(len(block))
                    done += len(block)
                    report("download", done, total)
    except urllib.error.HTTPError as exc:
        raise ZooError(f"cannot download {variant.url}: HTTP {exc.code} {exc.reason}; {hint}", exit_code=1) from None
    except urllib.error.URLError as exc:
        raise ZooError(f"cannot download {variant.url}: {exc.reason}; {hint}", exit_code=1) from None
    except (OSError, http.client.HTTPException) as exc:
        reason = str(exc) or type(exc).__name__
        raise ZooError(f"download of {variant.url} interrupted: {reason}; {hint}", exit_code=1) from None


@contextmanager
def _progress(enabled: bool, description: str, total: Optional[int]) -> Iterator[Callable[[int], None]]:
    """Yields ``advance(n_bytes)``: a rich progress bar on an interactive stderr, else a no-op."""
    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield lambda n: None
        return
    columns = ("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
