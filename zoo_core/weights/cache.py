"""Where converted weights live: ``$ZOO_HOME/weights/<model>/<variant>.safetensors``.

``ZOO_HOME`` defaults to the platform's user cache folder. Next to each weights file sits its SHA-256 record
(``.sha256``, `sha256sum` format); while a pull or an import of that variant runs, a lock file (``.lock``)
serialises them, and it goes when the lock is released.
"""

from __future__ import annotations

import re
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator, Optional


from ..errors import ZooError
from ..files import make_folders, remove_empty_folders
from ..home import zoo_home
from ..locks import exclusive
from ..registry import ModelEntry

_VARIANT_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


def check_variant_name(variant: str) -> str:
    """Variant names become file names: lower-case letters, digits, '-', '_' and '.' only."""
    if not _VARIANT_NAME.match(variant):
        raise ZooError(f"invalid weights variant name {variant!r}: use lower-case letters, digits, '-', '_', '.'")
    return variant


def variant_name(entry: ModelEntry, variant: Optional[str], cached: bool = False) -> str:
    """The given variant name, or the model's default one. Without released weights, with ``cached``: the one
    variant in the cache (imported or trained); none, or several to choose from, is an error."""
    if variant:
        return check_variant_name(variant)
    if entry.default_variant is not None:
        return entry.default_variant
    found = cached_variants(entry) if cached else []
    if len(found) == 1:
        return found[0]
    if found:
        raise ZooError(
            f"model {entry.name!r} has no released weights and {len(found)} cached variants ({', '.join(found)}); "
            f"name one, e.g. {entry.name}:{found[0]}"
        )
    raise ZooError(f"model {entry.name!r} has no released weights; train it or `zoo import` a checkpoint for it")


def cached_path(entry: ModelEntry, variant: Optional[str] = None) -> Path:
    """Path of the converted safetensors file of ``entry:variant`` (it may not exist yet)."""
    return zoo_home() / "weights" / entry.name / f"{variant_name(entry, variant)}.safetensors"


def hash_record_path(weights: Path) -> Path:
    return weights.with_name(weights.name + ".sha256")


def is_cached(entry: ModelEntry, variant: Optional[str] = None) -> bool:
    """Both the weights file and its hash record exist (whether they agree is checked on load)."""
    path = cached_path(entry, variant)
    return path.is_file() and hash_record_path(path).is_file()


def cached_variants(entry: ModelEntry) -> list[str]:
    """Every variant of ``entry`` in the cache (released, imported or trained), sorted."""
    folder = zoo_home() / "weights" / entry.name
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.safetensors") if hash_record_path(p).is_file())


@contextmanager
def variant_lock(path: Path) -> Iterator[None]:
    """Exclusive lock for one cached variant, so concurrent pulls never write the same file at once. The lock
    file goes on release, and so does the model's folder when this call made it and nothing landed there (a
    failed pull leaves nothing behind)."""
    with ExitStack() as stack:
        for attempt in range(_ATTEMPTS):
            try:
                stack.callback(remove_empty_folders, make_folders(path.parent))  # runs after the lock is released
            except OSError as exc:
                raise ZooError(f"cannot write to the weights cache {path.parent}: {exc.strerror}", exit_code=1) from None
            try:
                stack.enter_context(exclusive(path.with_suffix(".lock")))
                break
            except ZooError:
                # the holder we waited for failed and removed the folder it had made: make it again
                if path.parent.is_dir() or attempt == _ATTEMPTS - 1:
                    raise
        yield


_ATTEMPTS = 3
