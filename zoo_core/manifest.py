"""Whole catalogues: who separates which input, the manifest that records every item, and what a rerun skips.

Sharding. Every process (a torchrun rank) gets a share of the inputs balanced by declared duration: the
longest-processing-time rule, longest input first to the least-loaded rank, ties to the lower rank and the
earlier input, so every rank computes the same shares from the same list. Each input, hence each output
file, belongs to exactly one rank: one writer per output.

The manifest is JSON lines, one record per event of an item:

    {"input": "/abs/song.wav", "outputs": {"vocals": "/abs/out/.../vocals.wav", ...}, "model": "NAME:VARIANT",
     "status": "started" | "done" | "failed", "error": null | "one line", "seconds": 12.3 (wall time),
     "audio_seconds": 215.0, "rank": 0, "time": "2026-11-27T15:00:00.123456+00:00",
     "settings": {"model": "NAME:VARIANT", "weights": "<sha256>", "artifact": null, "method": "overlap-add",
                  "segment": 6.965986, "overlap": 0.25, "precision": "fp32", "format": "wav", "bits": "float"},
     "settings_digest": "<16 hex digits>"}

``settings`` are what defines the output files' contents (`run_settings`): the weights (the SHA-256 of the
loaded weights file) or the exported file's SHA-256, the method, the segment and overlap in effect (seconds and
a fraction, after rounding to whole STFT hops), the precision, the container and the sample format. Which stems
and which container are also in the output names the record lists.

One run writes a manifest at a time (`zoo_core.cli.batch` holds a lock on the output folder), one whole
line per ``write`` under a lock of the file (`zoo_core.files.append_line`); a reader ignores a torn last line and
the next line starts on a line of its own. Under torchrun rank r writes ``<manifest>.rank-<r>.jsonl`` beside the
manifest and rank 0 folds those into the manifest at the start (leftovers of a killed run) and at the end of the
run, an interrupted one included.

Resume. An input is complete when its latest record for this model is ``done``, with the settings of this run,
names every output wanted now and all of them exist (outputs are written atomically, so existence means
complete): it is skipped. An input the manifest knows otherwise (started, failed, other settings, an output
gone) is separated again, replacing what its earlier attempt left; for a ``done`` record the reason is given
(`Decision.reason`, e.g. ``precision fp32 -> bf16``). A record without settings (an older svs-zoo) counts as
other settings. An input the manifest has never seen keeps `zoo separate`'s rule: existing outputs need
``--force``. ``--force`` redoes everything.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

from .files import append_line, lock_if_possible, write_text_atomically

MANIFEST_NAME = "manifest.jsonl"
STARTED, DONE, FAILED = "started", "done", "failed"


def declared_seconds(path: Path) -> float:
    """The duration a file's header declares (0 for a file that cannot be opened: it fails fast anyway)."""
    from .audio import open_audio
    from .errors import ZooError

    try:
        reader = open_audio(path)
    except (ZooError, OSError):
        return 0.0
    return reader.frames / reader.sample_rate if reader.sample_rate else 0.0


def shard(seconds: Sequence[float], ranks: int) -> list[list[int]]:
    """Indices of the items each rank takes, by the longest-processing-time rule on ``seconds``; each rank's
    indices are in input order."""
    loads = [0.0] * ranks
    shares: list[list[int]] = [[] for _ in range(ranks)]
    for index in sorted(range(len(seconds)), key=lambda i: (-seconds[i], i)):
        rank = min(range(ranks), key=lambda r: (loads[r], r))
        shares[rank].append(index)
        loads[rank] += seconds[index]
    return [sorted(share) for share in shares]


def longest_first(seconds: Sequence[float]) -> list[int]:
    """Input indices, longest first: the order that keeps a pool of workers evenly busy to the end."""
    return sorted(range(len(seconds)), key=lambda i: (-seconds[i], i))


def record(input: Path, outputs: dict[str, Path], model: str, status: str, *, error: Optional[str] = None,
           seconds: Optional[float] = None, audio_seconds: Optional[float] = None, rank: int = 0,
           settings: Optional[dict] = None) -> dict:
    return {
        "input": str(absolute(input)),
        "outputs": {stem: str(absolute(path)) for stem, path in outputs.items()},
        "model": model,
        "status": status,
        "error": error,
        "seconds": None if seconds is None else round(seconds, 3),
        "audio_seconds": None if audio_seconds is None else round(audio_seconds, 3),
        "rank": rank,
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "settings": settings,
        "settings_digest": None if settings is None else settings_digest(settings),
    }


def run_settings(*, model: str, weights: Optional[str], artifact: Optional[str], method: str,
                 segment: Optional[float], overlap: Optional[float], precision: Optional[str], format: str,
                 bits: str) -> dict:
    """The settings that define an output's contents, as a record keeps them (module doc). ``weights`` and
    ``artifact`` are SHA-256 digests (one of them None); ``segment`` (seconds) and ``overlap`` (fraction) are the
    values in effect, None for a method that does not cut segments."""
    geometry = {key: None if value is None else round(value, 6) for key, value in
                (("segment", segment), ("overlap", overlap))}
    return dict(model=model, weights=weights, artifact=artifact, method=method, **geometry, precision=precision,
                format=format, bits=bits)


def settings_digest(settings: dict) -> str:
    """A short, stable digest of ``settings``: equal digests, equal settings."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def differences(old: Optional[dict], new: dict) -> str:
    """What changed from ``old`` to ``new`` settings, in a few words (``precision fp32 -> bf16, segment 6.966 s ->
    3 s``)."""
    if not old:
        return "recorded without its settings (by an older svs-zoo)"
    said = []
    source = {key: _source(settings) for key, settings in (("old", old), ("new", new))}
    if source["old"] != source["new"]:
        said.append(f"{source['old']} -> {source['new']}")
    for key in ("model", "method", "segment", "overlap", "precision", "format", "bits"):
        before, after = old.get(key), new.get(key)
        if before != after and before is not None and after is not None:  # None: not used by that method
            shown = [_shown(key, before), _shown(key, after)]
            if shown[0] == shown[1]:  # apart only beyond the digits shown
                shown = [str(before), str(after)]
            said.append(f"{key} {shown[0]} -> {shown[1]}")
    return ", ".join(said) or "other settings"


def _source(settings: dict) -> str:
    """The weights' identity in a few characters: ``weights 1a2b3c4d`` or ``artifact 1a2b3c4d``."""
    for key in ("artifact", "weights"):
        if settings.get(key):
            return f"{key} {str(settings[key])[:8]}"
    return "unknown weights"


def _shown(key: str, value) -> str:
    return f"{value:.4g} s" if key == "segment" else f"{value:.3g}" if key == "overlap" else str(value)


def absolute(path: Path) -> Path:
    """Absolute without resolving links: the name the user's folders give it, from any working directory."""
    return Path(os.path.abspath(path))


class Manifest:
    """The manifest at ``path``; this process appends to ``path`` itself, or to its shard for ``rank`` when
    ``sharded`` (under torchrun)."""

    def __init__(self, path: Path, rank: int = 0, sharded: bool = False):
        self.path = Path(path)
        self.writes_to = self.shard_path(rank) if sharded else self.path

    def shard_path(self, rank: int) -> Path:
        return self.path.with_name(f"{self._stem()}.rank-{rank}.jsonl")

    def shards(self) -> list[Path]:
        """The rank shards, and the shards a fold had claimed when it was killed."""
        live = self.path.parent.glob(f"{self._stem()}.rank-*.jsonl")
        claimed = self.path.parent.glob(f".{self._stem()}.rank-*.folding")
        return sorted([*live, *claimed])

    def _stem(self) -> str:
        return self.path.name[: -len(".jsonl")] if self.path.name.endswith(".jsonl") else self.path.name

    def append(self, entry: dict) -> None:
        append_line(self.writes_to, json.dumps(entry, ensure_ascii=False))

    def records(self) -> list[dict]:
        """Every record, the manifest's own first, then the shards' (in time order)."""
        own = list(_read_lines(self.path))
        shard_records = sorted((r for p in self.shards() for r in _read_lines(p)), key=lambda r: r.get("time", ""))
        return own + shard_records

    def fold_shards(self) -> None:
        """Move the shards' records into the manifest (rank 0): one atomic rewrite, then the shards go. Safe while
        ranks still append (an interrupted run): each shard is first renamed to a claim, and its lock taken, so a
        line being written is complete before the claim is read, and a later line goes to a new shard (see
        `zoo_core.files.append_line`), folded by the next fold. A record already in the manifest (a fold
        interrupted before the claims were removed) is not repeated."""
        claims = [self._claim(p) for p in self.shards()]
        claims = [p for p in claims if p is not None]
        if not claims:
            return
        lines = [line for line in _raw_lines(self.path)]
        present = set(lines)
        extra = []
        for claim in claims:
            with _locked(claim):  # waits for a rank's write in flight
                extra.extend(line for line in _raw_lines(claim) if line not in present and _parse(line) is not None)
        extra.sort(key=lambda line: _parse(line).get("time", ""))
        write_text_atomically(self.path, "".join(line + "\n" for line in [*lines, *extra]))
        for p in claims:
            p.unlink(missing_ok=True)

    def _claim(self, shard: Path) -> Optional[Path]:
        if shard.name.startswith("."):  # claimed by a fold that was killed
            return shard
        claim = shard.with_name(f".{shard.name[: -len('.jsonl')]}.{secrets.token_hex(4)}.folding")
        try:
            os.replace(shard, claim)
        except FileNotFoundError:
            return None
        return claim


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "rb") as handle:
        lock_if_possible(handle.fileno())
        yield


def _raw_lines(path: Path) -> Iterator[str]:
    if not path.exists():
        return
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.rstrip("\n")
            if line.strip():
                yield line


def _parse(line: str) -> Optional[dict]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError:  # a line torn by a crash mid-write
        return None
    return value if isinstance(value, dict) and "input" in value and "status" in value else None


def _read_lines(path: Path) -> Iterator[dict]:
    for line in _raw_lines(path):
        parsed = _parse(line)
        if parsed is not None:
            yield parsed


@dataclass(frozen=True)
class Decision:
    """What a run does with one input: ``skip`` it (complete), or separate it, replacing leftovers
    (``overwrite``) when the manifest knows an earlier attempt; ``reason`` says why an input recorded as done is
    done again (other settings, a stem not written then, an output gone)."""

    skip: bool
    overwrite: bool
    reason: Optional[str] = None


def decide(records: Iterable[dict], model: str, wanted: dict[Path, dict[str, Path]], force: bool,
           settings: Optional[dict] = None) -> dict[Path, Decision]:
    """The resume rule (module doc) for every input in ``wanted`` (input → its outputs), for a run with
    ``settings`` (`run_settings`)."""
    latest: dict[str, dict] = {}
    for entry in records:
        if entry.get("model") == model:
            latest[entry["input"]] = entry
    digest = None if settings is None else settings_digest(settings)
    decisions = {}
    for path, outputs in wanted.items():
        if force:
            decisions[path] = Decision(skip=False, overwrite=True)
            continue
        entry = latest.get(str(absolute(path)))
        if entry is None:
            decisions[path] = Decision(skip=False, overwrite=False)
            continue
        if entry["status"] != DONE:  # an interrupted or failed attempt: resumed without a word
            decisions[path] = Decision(skip=False, overwrite=True)
            continue
        reason = _why_not_complete(entry, outputs, settings, digest)
        decisions[path] = Decision(skip=reason is None, overwrite=reason is not None, reason=reason)
    return decisions


def _why_not_complete(entry: dict, outputs: dict[str, Path], settings: Optional[dict], digest: Optional[str]) -> Optional[str]:
    """Why a ``done`` record does not make its input complete for this run, or None when it does."""
    if entry.get("settings_digest") != digest:
        return differences(entry.get("settings"), settings or {})
    recorded = set((entry.get("outputs") or {}).values())
    missing = [stem for stem, p in outputs.items() if str(absolute(p)) not in recorded]
    if missing:
        return f"{', '.join(missing)} not written then"
    gone = [p.name for p in outputs.values() if not Path(absolute(p)).exists()]
    if gone:
        return f"{', '.join(gone)} gone since"
    return None
