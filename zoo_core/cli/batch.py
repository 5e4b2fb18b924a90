"""`BatchRun`: one `zoo separate` run over many inputs: plan (what is done, who does what), separate, record, report.

The same steps serve one process, ``--jobs N`` worker processes and torchrun ranks (`zoo_core.manifest` has
the rules: sharding, the manifest, resume). Under torchrun rank 0 plans — lists the inputs, folds leftover
manifest shards, decides what a rerun skips — and every rank receives that plan; the ranks read the declared
durations of the inputs to do in turns, and each takes its share. At the end every rank's results go to rank
0, which folds the manifest shards and reports for the whole run.

One run per output folder: the run (rank 0) holds ``OUTPUT/.zoo.lock`` (and a lock beside a manifest kept
elsewhere) from before it plans until it ends, and removes the lock file then; a second run on the same folder
is refused in one line. Under that lock the plan first removes the temporaries a killed run left in the folders
this run writes (`zoo_core.files.remove_stale_temporaries`), and an interrupted torchrun run still folds the
rank shards into the manifest on its way out.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import click

from ..manifest import (
    DONE, FAILED, STARTED, Manifest, declared_seconds, decide, longest_first, record, run_settings, shard,
)
from ..errors import ZooError
from ..separation import SeparationSettings, choose_stems, model_folder, model_label, output_paths, separate_file
from .options import RunSettings
from .runner import ProgressDisplay, check_segment, run_items


def _separate_one(model, item: tuple[Path, bool], *, out_dir: Path, options: SeparationSettings,
                  stems: Optional[list[str]], audio_format: str, bits: Optional[str], force: bool, on_start,
                  progress) -> dict:
    path, overwrite = item
    return separate_file(model, path, out_dir, options=options, stems=stems, format=audio_format, bits=bits,
                         force=force or overwrite, on_start=on_start, progress=progress).as_dict()


@dataclass
class Plan:
    """Rank 0's view of the run, sent to every rank."""

    todo: list[tuple[Path, bool]]  # (input, overwrite what an earlier attempt left)
    skipped: list[Path]
    problems: list[tuple[Path, str]]
    total: int
    settings: Optional[dict] = None  # what defines the outputs (`zoo_core.manifest.run_settings`)
    redone: list[tuple[Path, str]] = field(default_factory=list)  # inputs done before, done again: why


@dataclass
class Outcome:
    """What one rank did."""

    separated: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    failures: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class BatchRun:
    inputs: list[Path]
    settings: RunSettings
    output: Path
    stems: Optional[list[str]]
    audio_format: str
    bits: Optional[str]
    force: bool
    manifest: Path
    context: Any  # zoo_core.train.distributed.Context under torchrun, else None
    quiet: bool
    artifact: Optional[Path] = None  # an exported file to separate with, instead of settings.model
    source: str = field(default="", init=False)  # the model name a summary reports, once loaded

    @property
    def rank(self) -> int:
        return self.context.rank if self.context is not None else 0

    @property
    def world(self) -> int:
        return self.context.world_size if self.context is not None else 1

    def run(self) -> tuple[Optional[dict], list[tuple[str, int]], int]:
        """Returns (summary, failures, total inputs) on rank 0, (None, [], 0) elsewhere."""
        from ..train import distributed as ranks
        started = time.perf_counter()
        book = Manifest(self.manifest, self.rank, sharded=self.world > 1)
        files, problems = expand_inputs(self.inputs) if self.rank == 0 else ([], [])
        with contextlib.ExitStack() as held:
            refusal = self._hold_folder(held) if self.rank == 0 else None
            any_files, refusal = ranks.from_main((bool(files), refusal), self.group)
            if refusal is not None:
                if self.rank != 0:  # rank 0 says it, once
                    return None, [], 0
                raise ZooError(refusal, exit_code=1)
            if self.rank == 0 and self.world > 1:  # an interrupted run folds the rank shards on its way out
                held.callback(self._fold_on_exit, book)
            model = self._load_model(len(files)) if any_files else None
            label = model_label(model) if model is not None else self.settings.model
            self.source = getattr(model, "entry_name", "") if self.artifact is not None else self.settings.model
            plan = self._plan(files, problems, model, label, book) if self.rank == 0 else None
            plan = ranks.from_main(plan, self.group)
            if self.rank == 0:
                self._report_plan(plan, label, book)
            share = self._my_share(plan.todo)
            outcome = self._separate(model, label, book, share, plan.settings)
            outcomes = ranks.gather(outcome, self.group)
            if self.rank != 0:
                return None, [], 0
            if self.world > 1:
                book.fold_shards()
            return self._summary(plan, outcomes, started), self._failures(plan, outcomes), plan.total

    def _hold_folder(self, held: contextlib.ExitStack) -> Optional[str]:
        """Lock the output folder (made now if missing, removed at the end if it stays empty) and the manifest's
        folder if that is elsewhere, for the rest of the run; returns why not when another run holds them."""
        from ..files import make_folders, remove_empty_folders
        from ..locks import Busy, exclusive

        try:
            made = make_folders(self.output)
        except OSError as exc:
            raise ZooError(f"cannot use {self.output} as the output folder: {exc.strerror or exc}", exit_code=2) from None
        held.callback(remove_empty_folders, made)
        locks = [(self.output / LOCK_NAME, f"{self.output}", "-o")]
        if Path(os.path.abspath(self.manifest.parent)) != Path(os.path.abspath(self.output)):
            locks.append((self.manifest.parent / f".{self.manifest.name}.lock", f"the manifest {self.manifest}",
                          "--manifest"))
        for path, what, option in locks:
            try:
                held.callback(remove_empty_folders, make_folders(path.parent))
                held.enter_context(exclusive(path, wait=False, busy=f"another zoo run is writing to {what} (it holds "
                                                                    f"{path}); wait for it to end or use another {option}"))
            except Busy as exc:
                return str(exc)
            except OSError as exc:
                raise ZooError(f"cannot lock {path}: {exc.strerror or exc}", exit_code=2) from None
        return None

    def _fold_on_exit(self, book: Manifest) -> None:
        """Fold the rank shards, also when the run ends by an exception (SIGTERM from torchrun, Ctrl-C): what
        the ranks recorded is then in the manifest at once. A failure here leaves the shards for the next run."""
        try:
            book.fold_shards()
        except (ZooError, OSError):
            pass

    @functools.cached_property
    def group(self):
        """torchrun's group, or a group of this process alone (the collectives then do nothing)."""
        import torch

        from ..train.distributed import Context

        return self.context if self.context is not None else Context(0, 0, 1, torch.device("cpu"))

    def _device(self) -> str:
        return str(self.context.device) if self.context is not None else self.settings.device

    def _load_model(self, files: int):
        from ..train import distributed as ranks

        holder: dict[str, Any] = {}
        # rank 0 first: it fills the weights cache, the others then read it
        ranks.main_first(lambda: holder.update(model=self._open()), self.group)
        model = holder["model"]
        choose_stems(model, self.stems)  # an unknown stem name fails before any work
        # and so does a segment the model cannot use, or one that does not fit in memory
        check_segment(model, self.settings.separation, min(self.settings.jobs, max(1, files)), warn_here=self.rank == 0)
        return model

    def _open(self):
        from ..loading import load

        if self.artifact is not None:
            return load(self.artifact, device=self._device())
        return load(self.settings.model, device=self._device(), precision=self.settings.precision)

    def _outputs(self, model, path: Path) -> dict[str, Path]:
        return output_paths(self.output, model, path, choose_stems(model, self.stems), self.audio_format)

    def _plan(self, files: list[Path], problems: list[tuple[Path, str]], model, label: str, book: Manifest) -> Plan:
        book.fold_shards()  # leftovers of a killed distributed run, before anyone appends
        wanted = {path: self._outputs(model, path) for path in files} if model is not None else {}
        if model is not None:
            self._remove_stale_temporaries(model, wanted)
        settings = self._run_settings(model) if model is not None else None
        decisions = decide(book.records(), label, wanted, self.force, settings)
        todo = [(path, decisions[path].overwrite) for path in files if not decisions[path].skip]
        skipped = [path for path in files if decisions[path].skip]
        redone = [(path, decisions[path].reason) for path in files if decisions[path].reason]
        return Plan(todo, skipped, problems, len(files) + len(problems), settings, redone)

    def _remove_stale_temporaries(self, model, wanted: dict[Path, dict[str, Path]]) -> None:
        """What a killed run (SIGKILL, out of memory) left: any temporary in the track folders of this run's
        inputs, and in the output and manifest folders the temporaries of the names written there (the manifest,
        and the outputs, which an older svs-zoo staged in the deepest folder that existed)."""
        from ..files import remove_stale_temporaries

        names = {self.manifest.name, *(p.name for outputs in wanted.values() for p in outputs.values())}
        for folder in {self.output, self.output / model_folder(model), self.manifest.parent}:
            remove_stale_temporaries(folder, names)
        for folder in {p.parent for outputs in wanted.values() for p in outputs.values()}:
            remove_stale_temporaries(folder)

    def _run_settings(self, model) -> dict:
        """What defines this run's outputs (`zoo_core.manifest.run_settings`), for the manifest."""
        from ..audio import OUTPUT_BITS, subtype_for
        from ..hashing import sha256_file

        options = self.settings.separation
        segment = overlap = None
        if options.method == "overlap-add":
            segment_samples, overlap_samples = options.geometry(model)
            segment, overlap = segment_samples / model.sample_rate, overlap_samples / segment_samples
        subtype = subtype_for(self.audio_format, self.bits)
        # mp3 has no bit depth (its bitrate is fixed), so its "bits" is None
        bits = next((name for name, value in OUTPUT_BITS.items() if value == subtype), None)
        weights = artifact = None
        if self.artifact is not None:
            artifact = sha256_file(self.artifact)
        else:
            weights = model.provenance.sha256 if model.provenance is not None else None
        settings = run_settings(model=model_label(model), weights=weights, artifact=artifact, method=options.method,
                                segment=segment, overlap=overlap,
                                precision=None if self.artifact is not None else self.settings.precision,
                                format=self.audio_format, bits=bits)
        if hasattr(model, "ensemble_settings"):  # an ensemble's members, rule and weights (zoo_core.ensemble)
            settings["ensemble"] = model.ensemble_settings()
        return settings

    def _report_plan(self, plan: Plan, label: str, book: Manifest) -> None:
        for path, message in plan.problems:
            click.echo(f"error: {message}", err=True)
            book.append(record(path, {}, label, FAILED, error=message, rank=self.rank, settings=plan.settings))
        if plan.skipped and not self.quiet:
            click.echo(f"skipping {len(plan.skipped)} of {plan.total} files the manifest records as done "
                       f"({book.path}; --force redoes them)", err=True)
        if not self.quiet:
            reasons: dict[str, list[Path]] = {}
            for path, reason in plan.redone:
                reasons.setdefault(reason, []).append(path)
            for reason, paths in reasons.items():  # one line per difference, however many files share it
                which = paths[0].name if len(paths) == 1 else f"{len(paths)} files done before"
                click.echo(f"redoing {which}: {reason}", err=True)

    def _my_share(self, todo: list[tuple[Path, bool]]) -> list[tuple[Path, bool]]:
        """This rank's items: all of them alone, else a share balanced by declared duration; a pool of
        ``--jobs`` workers gets them longest first."""
        from ..train import distributed as ranks

        if self.world == 1 and self.settings.jobs <= 1:
            return todo
        # the ranks read the headers in turns: thousands of files open in 1/world of the time
        mine = {i: declared_seconds(path) for i, (path, _) in enumerate(todo) if i % self.world == self.rank}
        seconds: dict[int, float] = {}
        for part in ranks.gather(mine, self.group):
            seconds.update(part)
        durations = [seconds[i] for i in range(len(todo))]
        share = shard(durations, self.world)[self.rank]
        if self.settings.jobs > 1:
            share = sorted(share, key=longest_first(durations).index)
        return [todo[i] for i in share]

    def _separate(self, model, label: str, book: Manifest, items: list[tuple[Path, bool]],
                  settings: Optional[dict]) -> Outcome:
        outcome = Outcome()
        if not items:
            return outcome
        work = functools.partial(_separate_one, out_dir=self.output, options=self.settings.separation, stems=self.stems,
                                 audio_format=self.audio_format, bits=self.bits, force=self.force)
        distributed = self.context is not None
        started_at: dict[int, float] = {}

        def on_begin(key: int) -> None:
            started_at[key] = time.perf_counter()
            path = items[key][0]
            book.append(record(path, self._outputs(model, path), label, STARTED, rank=self.rank, settings=settings))

        def on_done(key: int, result: Optional[dict], error: Optional[tuple[str, int]]) -> None:
            path = items[key][0]
            if error is not None:
                outcome.failures.append(error)
                outcome.failed.append({"input": str(path), "error": error[0]})
                book.append(record(path, self._outputs(model, path), label, FAILED, error=error[0], rank=self.rank,
                                   seconds=time.perf_counter() - started_at.get(key, time.perf_counter()),
                                   settings=settings))
                display.error(error[0])
                return
            outcome.separated.append(result)
            outputs = {stem: Path(p) for stem, p in result["outputs"].items()}
            book.append(record(path, outputs, label, DONE, seconds=result["seconds"], rank=self.rank,
                               audio_seconds=result["frames"] / result["sample_rate"], settings=settings))
            for warning in result.get("warnings", []):
                display.warn(warning)
            folder = next(iter(outputs.values())).parent
            line = f"{result['input']} -> {folder}/ ({result['seconds']:.1f} s)"
            if distributed and not self.quiet:  # several ranks share a terminal: lines, no bars
                click.echo(f"[rank {self.rank}] {line}", err=True)
            elif not self.quiet:
                display.print(line)

        with ProgressDisplay(len(items), self.quiet or distributed, "files") as display:
            run_items(items, [path.name for path, _ in items], work, model=model, model_name=self.settings.model,
                      device=self._device(), jobs=self.settings.jobs, display=display, on_done=on_done,
                      precision=self.settings.precision, on_begin=on_begin, artifact=self.artifact,
                      threads=self.settings.threads)
        return outcome

    def _summary(self, plan: Plan, outcomes: list[Outcome], started: float) -> dict:
        return {
            "model": self.source or self.settings.model,
            **({"artifact": str(self.artifact)} if self.artifact is not None else {}),
            "method": self.settings.separation.method,
            "separated": [entry for o in outcomes for entry in o.separated],
            "skipped": [str(path) for path in plan.skipped],
            "redone": [{"input": str(path), "reason": reason} for path, reason in plan.redone],
            "failed": [{"input": str(p), "error": m} for p, m in plan.problems] + [e for o in outcomes for e in o.failed],
            "manifest": str(self.manifest),
            "ranks": self.world,
            "seconds": round(time.perf_counter() - started, 3),
        }

    def _failures(self, plan: Plan, outcomes: list[Outcome]) -> list[tuple[str, int]]:
        return [(message, 2) for _, message in plan.problems] + [f for o in outcomes for f in o.failures]


LOCK_NAME = ".zoo.lock"  # in the output folder while a run writes there


def expand_inputs(paths: Sequence[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Files as given; a folder stands for the audio files directly inside it. Two inputs with one track name
    would write the same outputs, so the later ones are refused. Returns (files, [(input, problem)])."""
    from ..audio import AUDIO_EXTENSIONS, is_audio_file, track_name

    files: list[Path] = []
    problems: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if is_audio_file(p))
            if not found:
                problems.append((path, f"{path}: no audio files in this folder ({', '.join(AUDIO_EXTENSIONS)})"))
            files.extend(found)
        else:
            files.append(path)
    seen: dict[str, Path] = {}
    unique = []
    for path in files:
        name = track_name(path)
        if name in seen:
            problems.append((path, f"{path}: same track name as {seen[name]}; the outputs would collide"))
        else:
            seen[name] = path
            unique.append(path)
    return unique, problems
