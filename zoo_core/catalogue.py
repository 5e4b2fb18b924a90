"""Whole catalogues: who separates which input, the manifest that records every item, and what a rerun skips.

Sharding. Every process (a torchrun rank) gets a share of the inputs balanced by declared duration: the
longest-processing-time rule, longest input first to the least-loaded rank, ties to the lower rank and the
earlier input, so every rank computes the same shares from the same list. Each input, hence each output
file, belongs to exactly one rank: one writer per output.

The manifest is JSON lines, one record per event of an item:

    {"input": "/abs/song.wav", "outputs": {"vocals": "/abs/out/.../vocals.wav", ...}, "model": "tdc-17:top1",
     "status": "started" | "done" | "failed", "error": null | "one line", "seconds": 12.3 (wall time),
     "audio_seconds": 215.0, "rank": 0, "time": "2026-11-27T15:00:00.123456+00:00"}

One process writes each manifest file, one whole line per ``write`` (`zoo_core.files.append_line`); a reader
ignores a torn last line. Under torchrun rank r writes ``<manifest>.rank-<r>.jsonl`` beside the manifest and rank 0
folds those into the manifest at the start (leftovers of a killed run) and at the end of the run.

Resume. An input is complete when its latest record for this model is ``done``, names every output wanted
now and all of them exist (outputs are written atomically, so existence means complete): it is skipped. An
input the manifest knows otherwise (started, failed, or an output gone) is separated again, replacing what its
interrupted attempt left. An input the manifest has never seen keeps `zoo separate`'s rule: existing outputs
need ``--force``. ``--force`` redoes everything.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

from .files import append_line, write_text_atomically

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
           seconds: Optional[float] = None, audio_seconds: Optional[float] = None, rank: int = 0) -> dict:
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
    }


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
        return sorted(self.path.parent.glob(f"{self._stem()}.rank-*.jsonl"))

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
        """Move the shards' records into the manifest (rank 0, while no rank writes): one atomic rewrite, then
        the shards go. A record already in the manifest (a fold interrupted before the shards were removed)
        is not repeated."""
        shards = self.shards()
        if not shards:
            return
        lines = [line for line in _raw_lines(self.path)]
        present = set(lines)
        extra = sorted(
            (line for p in shards for line in _raw_lines(p) if line not in present and _parse(line) is not None),
            key=lambda line: _parse(line).get("time", ""),
        )
        write_text_atomically(self.path, "".join(line + "\n" for line in [*lines, *extra]))
        for p in shards:
            p.unlink(missing_ok=True)


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
    (``overwrite``) when the manifest knows an earlier attempt."""

    skip: bool
    overwrite: bool


def decide(records: Iterable[dict], model: str, wanted: dict[Path, dict[str, Path]], force: bool) -> dict[Path, Decision]:
    """The resume rule (module doc) for every input in ``wanted`` (input → its outputs)."""
    latest: dict[str, dict] = {}
    for entry in records:
        if entry.get("model") == model:
            latest[entry["input"]] = entry
    decisions = {}
    for path, outputs in wanted.items():
        if force:
            decisions[path] = Decision(skip=False, overwrite=True)
            continue
        entry = latest.get(str(absolute(path)))
        if entry is None:
            decisions[path] = Decision(skip=False, overwrite=False)
            continue
        recorded = set((entry.get("outputs") or {}).values())
        names = [str(absolute(p)) for p in outputs.values()]
        complete = entry["status"] == DONE and all(n in recorded and Path(n).exists() for n in names)
        decisions[path] = Decision(skip=complete, overwrite=not complete)
    return decisions
