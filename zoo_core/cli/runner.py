"""Running one piece of work per input (`zoo separate`, `zoo eval`): model loading, worker processes, progress.

Each item (a file, a track) is one task: in this process, or spread over ``--jobs`` worker processes that each
load the model once. A task's `ZooError` becomes one ``error:`` line and the others go on; the batch exits
non-zero at the end when anything failed. Progress shows seconds of audio per running item and the items done.

Interruptions clean up: Ctrl-C or SIGTERM stops the workers (they ignore SIGINT, so none prints a traceback, and
turn SIGTERM into `Terminated`, so a half-written output is removed, see `zoo_core.files`).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Callable, Optional, Sequence

import click

from ..errors import ZooError

Work = Callable[..., Any]  # work(model, item, on_start=..., progress=...) -> result
PRECISIONS = ("fp32", "bf16")


class Terminated(BaseException):
    """SIGTERM (a cancelled job, ``kill``), raised like KeyboardInterrupt so that cleanup runs."""


def _raise_terminated(signum, frame) -> None:
    # once: a second SIGTERM (a process group's, then a parent's) must not cut the cleanup the first one started
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated()


def handle_sigterm() -> None:
    """Make SIGTERM unwind the stack (``finally`` blocks run) instead of killing the process on the spot."""
    signal.signal(signal.SIGTERM, _raise_terminated)


def check_segment(model, separation, jobs: int = 1, warn_here: bool = True) -> None:
    """Before any work: a segment the model cannot use, or one whose separation would not fit in memory
    (`zoo_core.memory`), is one error line; a segment that looks like a count of samples gets a warning."""
    from ..memory import check_segment_memory
    from ..separation import model_label
    from .messages import warn

    for part in getattr(model, "members", [model]):  # an ensemble: each member cuts its own segments
        if hasattr(part, "members"):
            check_segment(part, separation, jobs, warn_here)
            continue
        separation.geometry(part)
        warning = check_segment_memory(part, separation, model_label(part), jobs)
        if warning is not None and warn_here:
            warn(warning)


class ProgressDisplay:
    """rich progress on stderr: an overall bar counting finished items and a bar per running item in seconds of
    audio; nothing at all when quiet."""

    def __init__(self, items: int, quiet: bool, unit: str):
        self.progress = None
        self.tasks: dict[int, Any] = {}
        self.counts: dict[int, list[int]] = {}  # key -> [samples done, samples in all, sample rate]
        self.items, self.finished = items, 0
        if quiet:
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[amount]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True, soft_wrap=True),
            transient=False,
        )
        self.overall = self.progress.add_task(f"all {unit}", total=items, amount=f"0/{items}")

    def __enter__(self) -> "ProgressDisplay":
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.stop()

    def start(self, key: int, label: str, total: int, sample_rate: int = 0) -> None:
        """An item begins: ``total`` samples at ``sample_rate`` (0: unknown length, no figure shown)."""
        if self.progress is not None:
            self.counts[key] = [0, total, sample_rate]
            self.tasks[key] = self.progress.add_task(label, total=total or None, amount=self._seconds(key))

    def advance(self, key: int, amount: int) -> None:
        if self.progress is not None and key in self.tasks:
            self.counts[key][0] += amount
            self.progress.update(self.tasks[key], advance=amount, amount=self._seconds(key))

    def _seconds(self, key: int) -> str:
        done, total, rate = self.counts[key]
        return f"{done / rate:.1f}/{total / rate:.1f} s of audio" if rate and total else ""

    def finish(self, key: int) -> None:
        if self.progress is None:
            return
        task = self.tasks.pop(key, None)
        if task is not None:
            self.progress.remove_task(task)
        self.finished += 1
        self.progress.update(self.overall, advance=1, amount=f"{self.finished}/{self.items}")

    def print(self, message: str) -> None:
        if self.progress is not None:
            self.progress.console.print(message, highlight=False, markup=False)

    def error(self, message: str) -> None:
        """An error line on stderr, above the bars when they are shown."""
        if self.progress is not None:
            self.progress.console.print(f"error: {message}", highlight=False, markup=False)
        else:
            click.echo(f"error: {message}", err=True)

    def warn(self, message: str) -> None:
        if self.progress is not None:
            self.progress.console.print(f"warning: {message}", highlight=False, markup=False)
        else:
            click.echo(f"warning: {message}", err=True)


# ----------------------------------------------------------------------------------- worker processes

_worker: dict[str, Any] = {}


def _start_worker(model_name: str, device: str, precision: str, threads: int, messages, artifact=None) -> None:
    from ..allocator import tune_allocator
    from ..threads import apply_threads

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    tune_allocator()
    apply_threads(threads)
    from ..loading import load

    _worker["model"] = load(artifact, device=device) if artifact is not None else load(
        model_name, device=device, precision=precision)
    _worker["messages"] = messages
    signal.signal(signal.SIGTERM, _worker_sigterm)


def _worker_sigterm(signum, frame) -> None:
    """The main process stops us: mid-item, unwind so the item's half-written files are removed; else just go."""
    if _worker.get("busy"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the main process and a process group may both send one
        raise Terminated()
    os._exit(143)


def _work_in_worker(work: Work, key: int, item: Any) -> tuple[Any, Optional[tuple[str, int]]]:
    messages = _worker["messages"]
    _worker["busy"] = True
    messages.put(("begin", key, None))
    try:
        result = work(
            _worker["model"],
            item,
            on_start=lambda total, rate=0: messages.put(("start", key, (total, rate))),
            progress=lambda amount: messages.put(("advance", key, amount)),
        )
        return result, None
    except ZooError as exc:  # sent back as text: exceptions lose their exit code when pickled
        return None, (str(exc), exc.exit_code)
    except Terminated:  # stopped by the main process; the outputs were removed on the way here
        os._exit(143)
    finally:
        _worker["busy"] = False


def run_items(
    items: Sequence[Any],
    labels: Sequence[str],
    work: Work,
    *,
    model,
    model_name: str,
    device: str,
    jobs: int,
    display: ProgressDisplay,
    on_done: Callable[[int, Any, Optional[tuple[str, int]]], None],
    precision: str = "fp32",
    on_begin: Optional[Callable[[int], None]] = None,
    artifact=None,
    threads: Optional[int] = None,
) -> None:
    """Run ``work`` on every item, with ``model`` in this process or in ``jobs`` worker processes that each
    load ``model_name`` once (from the cache that loading ``model`` filled), or open the exported file
    ``artifact``, and share ``threads`` torch threads (default: this process's count); ``on_begin(index)`` is
    called as an item starts, ``on_done(index, result, error)`` as it finishes, ``error`` a (message, exit
    code). Items are started in the order given."""
    if jobs <= 1 or len(items) <= 1:
        for key, (item, label) in enumerate(zip(items, labels)):
            if on_begin is not None:
                on_begin(key)
            try:
                result = work(
                    model,
                    item,
                    on_start=lambda total, rate=0, key=key, label=label: display.start(key, label, total, rate),
                    progress=lambda amount, key=key: display.advance(key, amount),
                )
                error = None
            except ZooError as exc:
                result, error = None, (str(exc), exc.exit_code)
            display.finish(key)
            on_done(key, result, error)
        return
    import torch

    from ..threads import per_worker

    jobs = min(jobs, len(items))
    threads = per_worker(threads or torch.get_num_threads(), jobs)
    context = multiprocessing.get_context("spawn")  # forking after torch has started threads can deadlock
    messages = context.Queue()
    pool = ProcessPoolExecutor(jobs, context, initializer=_start_worker, initargs=(model_name, device, precision, threads, messages, artifact))
    try:
        pending = {pool.submit(_work_in_worker, work, key, item): key for key, item in enumerate(items)}
        tracker = _Tracker(labels, display, on_begin)
        while pending:
            done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            tracker.drain(messages)
            for future in done:
                key = pending.pop(future)
                result, error = future.result()
                tracker.finish(key)
                on_done(key, result, error)
    except BaseException:
        _stop_workers(pool)
        raise
    pool.shutdown(wait=True)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and SIGTERM the workers, which remove their half-written files and exit."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=10)


class _Tracker:
    """Turns the workers' messages into progress and ``on_begin`` calls. A message can arrive after its item's
    result (two channels): then the item is begun when it finishes, and its late messages are dropped."""

    def __init__(self, labels: Sequence[str], display: ProgressDisplay, on_begin: Optional[Callable[[int], None]]):
        self.labels, self.display, self.on_begin = labels, display, on_begin
        self.begun: set[int] = set()
        self.finished: set[int] = set()

    def drain(self, messages) -> None:
        while True:
            try:
                kind, key, value = messages.get_nowait()
            except queue.Empty:
                return
            if key in self.finished:
                continue
            if kind == "begin":
                self._begin(key)
            elif kind == "start":
                self.display.start(key, self.labels[key], *value)
            else:
                self.display.advance(key, value)

    def finish(self, key: int) -> None:
        self._begin(key)
        self.finished.add(key)
        self.display.finish(key)

    def _begin(self, key: int) -> None:
        if key not in self.begun:
            self.begun.add(key)
            if self.on_begin is not None:
                self.on_begin(key)


def finish_batch(failures: list[tuple[str, int]], total: int, what: str) -> None:
    """After a batch: a non-zero exit (2 if any input was bad, else 1) when anything failed."""
    if failures:
        raise ZooError(f"{len(failures)} of {total} {what} failed", exit_code=max(code for _, code in failures))
