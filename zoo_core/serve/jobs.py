"""The queue behind the page: uploaded files are separated one after another by one worker thread, and weights are
pulled with their progress. This is the one module of `zoo serve` that calls the separation engine and the
weights cache (`_separate`, `_pull`); the routes only see `Job`, `Queue` and plain dictionaries.

Each separation goes through the catalogue run's pieces, as `zoo separate` uses them: the manifest
(``<work>/manifest.jsonl``, `zoo_core.manifest`) records ``started``, then ``done`` or ``failed``, and its resume
rule decides at the next start whether a job that was running when the server stopped is complete or is
separated again over what its attempt left. A job that fails is recorded and shown; the queue goes on.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from ..errors import ZooError, first_line
from ..files import write_text_atomically
from .workdir import JOB_FILE, NotFound, WorkFolder, expired, remove_partial_files

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
CLEANUP_EVERY_S = 600


@dataclass
class Job:
    """One uploaded file and what to do with it. ``name`` is the upload's cleaned name (`workdir.safe_name`);
    ``outputs`` maps each stem to its file, relative to the job's folder."""

    id: str
    name: str
    model: str
    stems: Optional[list[str]]
    created: float
    state: str = QUEUED
    error: Optional[str] = None
    label: Optional[str] = None  # model:variant of the weights that made the stems
    outputs: dict[str, str] = field(default_factory=dict)
    sample_rate: int = 0
    channels: int = 0
    frames: int = 0  # the input's length (declared until the separation has counted them)
    seconds: Optional[float] = None  # wall time of the separation
    finished: Optional[float] = None
    done_frames: int = field(default=0, metadata={"live": True})  # progress, not saved

    @property
    def track(self) -> str:
        """The track's name, as the output folder and the downloads call it."""
        from ..audio import track_name

        return track_name(Path(self.name))

    def saved(self) -> dict:
        return {k: v for k, v in asdict(self).items() if not self.__dataclass_fields__[k].metadata.get("live")}

    @classmethod
    def from_saved(cls, data: dict) -> "Job":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


class Stopped(Exception):
    """The server is stopping, or the page removed the running job: the separation unwinds (its partial files
    are removed by the engine)."""


class Queue:
    def __init__(self, work: WorkFolder, device: str = "cpu", keep_hours: float = 24.0):
        self.work = work
        self.device = device
        self.keep_hours = keep_hours
        self.lock = threading.Condition()
        self.jobs: dict[str, Job] = {}
        self.pulls: dict[str, dict] = {}  # model -> {"state", "done", "total", "message"}
        self.version = 0  # bumped on every change the page shows
        self._stopping = threading.Event()
        self._cancelled: set[str] = set()
        self._model: tuple[Optional[str], object] = (None, None)
        self._thread: Optional[threading.Thread] = None
        self._last_cleanup = 0.0
        self._restore()

    # ------------------------------------------------------------------------------------------ state

    def _restore(self) -> None:
        """Jobs of an earlier run of the server: finished ones stay as they were, the others are queued again
        in their order (the manifest decides what their earlier attempt achieved)."""
        self.work.remove_leftovers()
        jobs = []
        for job_id in self.work.job_ids():
            folder = self.work.job_folder(job_id)
            try:
                job = Job.from_saved(json.loads((folder / JOB_FILE).read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError) as exc:
                print(f"warning: {folder / JOB_FILE} is unreadable ({first_line(exc)}); removing the job", file=sys.stderr)
                self.work.remove(job_id)
                continue
            if job.state in (QUEUED, RUNNING):
                job.state = QUEUED
                remove_partial_files(folder)
            jobs.append(job)
        self.jobs = {job.id: job for job in sorted(jobs, key=lambda j: j.created)}
        self.cleanup()

    def _write(self, job: Job) -> None:
        write_text_atomically(self.work.job_folder(job.id) / JOB_FILE, json.dumps(job.saved(), indent=1))

    def _save(self, job: Job) -> None:
        """Best effort (a full disk must not stop the queue): the manifest, not this file, says what is done."""
        try:
            self._write(job)
        except ZooError as exc:
            print(f"warning: {exc}", file=sys.stderr)

    def _changed(self) -> None:
        with self.lock:
            self.version += 1
            self.lock.notify_all()

    def submit(self, job: Job) -> None:
        self._write(job)  # a job that cannot be recorded is refused (the upload says why)
        with self.lock:
            self.jobs[job.id] = job
            self._changed()

    def get(self, job_id: str) -> Job:
        self.work.job_folder(job_id)  # refuses anything but a job id
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id}")
        return job

    def remove(self, job_id: str) -> None:
        """Rule 3's "at once": a job leaves the page with its files; a running one is stopped first (the worker
        removes it when its separation has unwound)."""
        job = self.get(job_id)
        with self.lock:
            if job.state == RUNNING:
                self._cancelled.add(job_id)
                return
            self.jobs.pop(job_id, None)
            self._changed()
        self.work.remove(job_id)

    def cleanup(self, now: Optional[float] = None) -> None:
        """Rule 3: finished jobs past their time go (the others are untouched)."""
        self._last_cleanup = time.time()
        for job in list(self.jobs.values()):
            if job.state in (DONE, FAILED) and expired(job.finished, self.keep_hours, now):
                self.remove(job.id)

    # ------------------------------------------------------------------------------------------ the worker

    def start(self) -> None:
        self._thread = threading.Thread(target=self._work, name="zoo-serve-queue", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 60) -> None:
        """Stop the worker; a separation in progress unwinds and its job stays queued for the next start."""
        self._stopping.set()
        self._changed()
        if self._thread is not None:
            self._thread.join(timeout)

    def _next(self) -> Optional[Job]:
        with self.lock:
            while not self._stopping.is_set():
                if time.time() - self._last_cleanup >= CLEANUP_EVERY_S:
                    self.cleanup()
                job = next((j for j in self.jobs.values() if j.state == QUEUED), None)
                if job is not None:
                    job.state, job.done_frames = RUNNING, 0
                    self._changed()
                    return job
                self.lock.wait(timeout=CLEANUP_EVERY_S)
        return None

    def _work(self) -> None:
        while (job := self._next()) is not None:
            self._save(job)
            try:
                self._separate(job)
            except Exception:  # a bug around one job (the engine's own errors are handled inside) spares the rest
                traceback.print_exc(file=sys.stderr)
                self._finish(job, FAILED, error="internal error; see the server's log")
            if job.id in self._cancelled:
                self._cancelled.discard(job.id)
                with self.lock:
                    self.jobs.pop(job.id, None)
                    self._changed()
                self.work.remove(job.id)
            else:
                self._save(job)  # done, failed, or queued again by a stop

    def _check(self, job: Job) -> None:
        if self._stopping.is_set() or job.id in self._cancelled:
            raise Stopped()

    # ------------------------------------------------------------------------------------------ the engine

    def _load(self, name: str):
        """The model of a job, kept loaded for the next job of the same model."""
        from ..loading import load

        if self._model[0] != name:
            self._model = (None, None)  # free the previous model before loading another
            self._model = (name, load(name, device=self.device, precision="fp32"))
        return self._model[1]

    def _separate(self, job: Job) -> None:
        from ..manifest import DONE as RECORDED_DONE
        from ..manifest import FAILED as RECORDED_FAILED
        from ..manifest import STARTED, Manifest, decide, record
        from ..separation import choose_stems, model_label, output_paths, separate_file

        folder = self.work.job_folder(job.id)
        source, out = folder / job.name, folder / "out"
        book = Manifest(self.work.manifest)
        label, outputs, started = job.model, {}, time.perf_counter()

        def on_start(frames: int, sample_rate: int) -> None:
            job.frames, job.sample_rate = frames, sample_rate
            self._changed()

        def progress(frames: int) -> None:
            self._check(job)
            job.done_frames += frames
            self._changed()

        try:
            model = self._load(job.model)
            label = model_label(model)
            outputs = output_paths(out, model, source, choose_stems(model, job.stems))
            decision = decide(book.records(), label, {source: outputs}, force=False)[source]
            if not decision.skip:  # else: done before the server stopped, only job.json missed it
                book.append(record(source, outputs, label, STARTED))
                result = separate_file(model, source, out, stems=job.stems, force=decision.overwrite,
                                       on_start=on_start, progress=progress)
                job.frames, job.sample_rate, job.channels = result.frames, result.sample_rate, result.channels
                book.append(record(source, outputs, label, RECORDED_DONE, seconds=result.seconds,
                                   audio_seconds=result.frames / result.sample_rate))
            self._finish(job, DONE, label=label, outputs={s: str(p.relative_to(folder)) for s, p in outputs.items()},
                         seconds=time.perf_counter() - started)
        except Stopped:
            job.state, job.done_frames = QUEUED, 0
            self._changed()
        except Exception as exc:  # a failing file never stops the queue
            if isinstance(exc, ZooError):
                message = str(exc)
            else:
                traceback.print_exc(file=sys.stderr)
                message = f"internal error: {first_line(exc, with_type=True)}"
            message = message.replace(f"{folder}/", "")  # the page knows the file by its name
            self._finish(job, FAILED, error=message, label=label)
            try:
                book.append(record(source, outputs, label, RECORDED_FAILED, error=message,
                                   seconds=time.perf_counter() - started))
            except ZooError as problem:  # e.g. a full disk: the page shows the job's own message all the same
                print(f"warning: {problem}", file=sys.stderr)

    def _finish(self, job: Job, state: str, **values) -> None:
        for key, value in values.items():
            setattr(job, key, value)
        job.state, job.finished = state, time.time()
        if state == DONE:
            job.done_frames = job.frames
        (self.work.job_folder(job.id) / job.name).unlink(missing_ok=True)  # rule 2: the stems stay, the upload goes
        self._changed()

    # ------------------------------------------------------------------------------------------ weights

    def pull(self, name: str) -> None:
        """Fetch a model's released weights in the background; `pulls` shows the stages."""
        from ..weights.models import resolve_variant

        resolve_variant(name, None)  # an unknown model, or one without released weights, is refused now
        with self.lock:
            if self.pulls.get(name, {}).get("state") not in (None, "done", "failed"):
                return
            self.pulls[name] = {"state": "download", "done": 0, "total": None, "message": ""}
            self._changed()
        threading.Thread(target=self._pull, args=(name,), name=f"zoo-serve-pull-{name}", daemon=True).start()

    def _pull(self, name: str) -> None:
        from ..weights import pull
        from ..weights.models import resolve_variant
        from ..weights.store import read_metadata

        status = self.pulls[name]

        def report(stage: str, done: int, total: Optional[int]) -> None:
            status.update(state=stage, done=done, total=total)
            self._changed()

        try:
            path = pull(name, progress=False, report=report)
            entry, variant = resolve_variant(name, None)
            released = entry.variant(variant)
            checked = [kind for kind, value in (("git blob SHA-1", released.git_sha1), ("SHA-256", released.sha256)) if value]
            sha256 = read_metadata(path).get("source_sha256", "")
            message = (f"verified: the {' and '.join(checked)} of {entry.name}:{variant} match the registry"
                       if checked else f"{entry.name}:{variant} has no published hash; its SHA-256 {sha256} is recorded")
            status.update(state="done", message=message, sha256=sha256)
        except Exception as exc:  # shown in the page, like a failing job
            if not isinstance(exc, ZooError):
                traceback.print_exc(file=sys.stderr)
            status.update(state="failed", message=first_line(exc, with_type=not isinstance(exc, ZooError)))
        self._changed()

    # ------------------------------------------------------------------------------------------ the page's view

    def speeds(self) -> dict[str, float]:
        """This machine's measured speed per model: seconds of audio per second of separation over every
        separation the manifest records as done (None-free; models never run here are absent)."""
        from ..manifest import DONE as RECORDED_DONE
        from ..manifest import Manifest

        audio: dict[str, float] = {}
        wall: dict[str, float] = {}
        for entry in Manifest(self.work.manifest).records():
            if entry.get("status") == RECORDED_DONE and entry.get("seconds") and entry.get("audio_seconds"):
                model = str(entry.get("model", "")).split(":")[0]
                audio[model] = audio.get(model, 0.0) + entry["audio_seconds"]
                wall[model] = wall.get(model, 0.0) + entry["seconds"]
        return {model: audio[model] / wall[model] for model in audio if wall[model] > 0}

    def view(self) -> dict:
        with self.lock:
            return {
                "version": self.version,
                "jobs": [_job_view(job) for job in self.jobs.values()],
                "pulls": {name: dict(status) for name, status in self.pulls.items()},
            }


def _job_view(job: Job) -> dict:
    view = job.saved()
    view["progress"] = {"done": job.done_frames, "total": job.frames, "sample_rate": job.sample_rate}
    view["track"] = job.track
    return view
