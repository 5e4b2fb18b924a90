"""Putting weights into the cache: `pull` a released variant, `import_checkpoint` a local file."""

from __future__ import annotations

import datetime
import shutil
import tempfile
from pathlib import Path
from typing import Optional

import torch

from ..errors import ZooError
from ..model import StftSettings
from ..registry import ModelEntry, WeightVariant, architecture_for, build_model, get_entry, split_name
from .cache import cached_path, cached_variants, check_variant_name, variant_lock
from .convert import Converted, checkpoint_file, read_checkpoint
from .stft_provenance import stft_provenance
from .fetch import Report, fetch_original
from ..hashing import file_digests
from .models import check_fits, resolve_variant, stft_json
from .store import is_intact, write_cached

IMPORTED = "imported"  # variant name of an imported file that matches no released variant


def weights_status(entry: ModelEntry) -> str:
    """What weights a model has here, in a few words: ``"2 of 3 cached"``, ``"3 downloadable"``, ``"cached"``,
    ``"downloadable"`` or ``"none"``. Counts every variant: released ones and any imported or trained."""
    released = [name for name, v in entry.variants.items() if v.url or v.file]
    cached = cached_variants(entry)
    known = sorted(set(released) | set(cached))
    if not known:
        return "none"
    if cached:
        return "cached" if len(known) == 1 else f"{len(cached)} of {len(known)} cached"
    return "downloadable" if len(released) == 1 else f"{len(released)} downloadable"


def pull(name: str, variant: Optional[str] = None, progress: bool = True, report: Optional[Report] = None) -> Path:
    """Fetch, verify and convert a released variant into the cache (a no-op when it is there intact).

    ``name`` is ``model`` or ``model:variant``; ``report`` hears the stages (`zoo_core.weights.fetch.Report`).
    Returns the cached safetensors path.
    """
    entry, chosen = resolve_variant(name, variant)
    released = entry.variant(chosen)
    label = f"{entry.name}:{chosen}"
    path = cached_path(entry, chosen)
    with variant_lock(path):
        if is_intact(path):
            return path
        download = f".download-{chosen}@"  # "@" is in no variant name: the prefix names this variant alone
        for stale in path.parent.glob(f"{download}*"):  # a pull of this variant killed outright; we hold its lock
            shutil.rmtree(stale, ignore_errors=True)
        with tempfile.TemporaryDirectory(prefix=download, dir=path.parent) as folder:
            original = fetch_original(released, label, Path(folder), progress, report)
            if report is not None:
                report("convert", 0, None)
            git_sha1, sha256 = file_digests(original)
            converted = read_checkpoint(original, architecture_for(entry).convert)
        stft = entry.stft_for(released)
        _check_fit(entry, chosen, converted, stft, exit_code=1)
        _write(entry, chosen, converted, stft, released.url, git_sha1, sha256, f"the released variant {chosen}")
    return path


def import_checkpoint(path: str | Path, model: str, variant: Optional[str] = None, stft: Optional[str] = None) -> Path:
    """Convert a local checkpoint (plain, DataParallel, Lightning, svs-zoo's own, or an architecture's original
    layout) into the cache.

    The variant defaults to the released one whose hashes the file matches, else ``"imported"``. A released
    variant's name is only accepted for that exact file. ``stft`` (a released variant's name, or
    ``"hop_length=1024,center=true"``) says which STFT settings the weights were trained with when the file does
    not tell (see `zoo_core.weights.stft_provenance`); the settings, and which rule chose them, are recorded in the
    cached file's metadata (``stft``, ``stft_source``). Returns the cached safetensors path.
    """
    source = checkpoint_file(path)
    entry = get_entry(model)
    variant = variant or split_name(model)[1]
    git_sha1, sha256 = file_digests(source)
    matched = next((v for v in entry.variants.values() if _same_file(v, git_sha1, sha256)), None)
    chosen = check_variant_name(variant) if variant else (matched.name if matched else IMPORTED)
    released = entry.variants.get(chosen)
    if released is not None and released is not matched:
        raise ZooError(
            f"{source} is not the released {entry.name}:{chosen} (git blob SHA-1 expected {released.git_sha1}, "
            f"got {git_sha1}); import it under another --variant name"
        )
    converted = read_checkpoint(source, architecture_for(entry).convert)
    settings, how = stft_provenance(entry, converted, str(source), matched.name if matched else None, stft)
    url = released.url if released is not None else source.resolve().as_uri()
    _check_fit(entry, chosen, converted, settings, exit_code=2)
    target = cached_path(entry, chosen)
    with variant_lock(target):
        _write(entry, chosen, converted, settings, url, git_sha1, sha256, how)
    return target


def _same_file(released: WeightVariant, git_sha1: str, sha256: str) -> bool:
    recorded = [(released.git_sha1, git_sha1), (released.sha256, sha256)]
    return any(expected for expected, _ in recorded) and all(not e or e == got for e, got in recorded)


def _check_fit(entry: ModelEntry, variant: str, converted: Converted, stft: StftSettings, exit_code: int) -> None:
    """The converted tensors must load strictly into the model they are for (else a `ZooError`)."""
    model = build_model(entry, stft=stft)
    check_fits(model.network, converted.tensors, f"{entry.name}:{variant}", exit_code)


def _write(
    entry: ModelEntry,
    variant: str,
    converted: Converted,
    stft: StftSettings,
    url: str,
    git_sha1: str,
    sha256: str,
    stft_source: str,
) -> None:
    from .. import __version__  # here, not on top: the package's __init__ may import this module early

    metadata = {
        "model": entry.name,
        "variant": variant,
        "source_url": url,
        "source_git_sha1": git_sha1,
        "source_sha256": sha256,
        "format": converted.format,
        "layout": converted.layout,
        "stft": stft_json(stft),
        "stft_source": stft_source,
        "torch_version": torch.__version__,
        "svs_zoo_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    write_cached(cached_path(entry, variant), converted.tensors, metadata)
