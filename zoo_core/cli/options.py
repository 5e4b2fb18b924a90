"""Options shared by several commands, declared once: one vocabulary, one unit (seconds) everywhere.

`separation_options` gives `zoo separate`, `zoo eval` and `zoo stream` the same model, segment, overlap, batch,
method, device, precision, jobs and threads options and hands the command one typed `RunSettings`, with the
thread count already applied; `device_option` and `threads_option` are the same two options for other
commands; `output_option` is ``-o/--output`` (``--out`` still works, hidden).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import click

from ..devices import DEVICE_HELP, parse_device
from ..ensemble.rules import RULES
from ..errors import ZooError
from ..builtin import default_model
from ..separation import DEFAULT_BATCH_SIZE, METHODS, SeparationSettings
from ..threads import apply_threads, resolve_threads
from .runner import PRECISIONS


@dataclass(frozen=True)
class RunSettings:
    """Which model runs where, and how a track is cut for it."""

    model: str
    separation: SeparationSettings
    device: str = "auto"  # as `zoo_core.devices.parse_device` spells it; resolved where the model is loaded
    precision: str = "fp32"
    jobs: int = 1
    threads: int = 1  # torch threads in all, shared by the --jobs workers


def separation_options(command: Optional[Callable] = None, *, live: bool = False) -> Callable:
    """Add the separation options to ``command``, which receives them as ``run: RunSettings``. ``live=True``
    (`zoo stream`) leaves out what a stream cannot use: --method (authors needs the whole track), --jobs and
    --batch-size (more segments per call only adds latency)."""
    if command is None:
        return functools.partial(separation_options, live=live)

    @functools.wraps(command)
    def wrapper(*args: Any, model_name: tuple[str, ...], segment: Optional[float], overlap: Optional[float], device: str,
                precision: str, threads: Optional[int], batch_size: int = DEFAULT_BATCH_SIZE,
                method: str = "overlap-add", jobs: int = 1, ensemble: Optional[str] = None,
                weights: Optional[str] = None, tta: bool = False, **kwargs: Any) -> Any:
        from ..ensemble.names import compose, parse_weights

        model_name = compose(model_name or (default_model(),), ensemble, parse_weights(weights), tta)
        if method == "authors" and (ensemble or tta):
            raise ZooError("--method authors runs one model alone; ensembles and --tta separate with overlap-add")
        if jobs < 1:
            raise ZooError(f"--jobs must be at least 1, got {jobs}")
        separation = SeparationSettings(segment=segment, overlap=overlap, batch_size=batch_size, method=method)
        separation.validate()
        threads = resolve_threads(threads)
        apply_threads(threads)
        run = RunSettings(model_name, separation, parse_device(device), precision, jobs, threads)
        return command(*args, run=run, **kwargs)

    options = {
        "model": click.option("-m", "--model", "model_name", multiple=True, default=(default_model(),), show_default=True,
                              help="Model NAME[:VARIANT] (any variant in the cache: released, imported or trained); "
                                   "several -m with --ensemble RULE make an ensemble."),
        "ensemble": click.option("--ensemble", type=click.Choice(RULES), default=None,
                                 help="Combine the -m models on their common stems: weighted average of waves or "
                                      "spectra, median of waves, or per time-frequency bin the largest/smallest."),
        "weights": click.option("--weights", metavar="W1,W2,...", default=None,
                                help="One weight per -m model for avg-wave and avg-spec [default: equal]."),
        "tta": click.option("--tta", is_flag=True,
                            help="Test-time augmentation: also separate with left/right swapped and with polarity "
                                 "inverted, undo each and average (every member of an ensemble)."),
        "segment": click.option("--segment", type=float, default=None, metavar="SECONDS",
                                help="Segment length in seconds [default: the model's training window]."),
        "overlap": click.option("--overlap", type=float, default=None, metavar="FRACTION",
                                help="Fraction of a segment shared with the next (linear cross-fade) [default: the "
                                     "model's: 0.25, or its reference's, e.g. 0.75 for MDX23C]."),
        "batch_size": click.option("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, show_default=True,
                                   help="Segments per model call (raise it on a GPU)."),
        "method": click.option("--method", type=click.Choice(METHODS), default="overlap-add", show_default=True,
                               help="overlap-add: cross-faded overlapping segments, streamed. authors: the original "
                                    "ISMIR 2020 chunk-and-trim procedure, whole track in memory (reproduces the "
                                    "paper's numbers)."),
        "device": device_option(),
        "precision": click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True,
                                  help="bf16 runs the network in bfloat16 (faster on CPUs with AVX-512 BF16; see "
                                       "docs/performance.md for the SDR cost); STFT and blending stay float32."),
        "jobs": click.option("-j", "--jobs", type=int, default=1, show_default=True,
                             help="Inputs processed in parallel processes (they share --threads)."),
        "threads": threads_option(),
    }
    chosen = [option for name, option in options.items() if not (live and name in _NOT_LIVE)]
    for option in reversed(chosen):
        wrapper = option(wrapper)
    return wrapper


_NOT_LIVE = ("batch_size", "method", "jobs")  # options a live stream has no use for


def device_option(help: str = DEVICE_HELP) -> Callable:
    """``--device auto|cpu|cuda|cuda:N`` (default auto), one spelling for every command."""
    return click.option("--device", default="auto", show_default=True, metavar="DEVICE", help=help)


def threads_option() -> Callable:
    """``--threads N``; the command resolves None with `zoo_core.threads.resolve_threads`."""
    return click.option("--threads", type=int, default=None, metavar="N",
                        help="torch threads in all [default: OMP_NUM_THREADS, else the physical cores]; on a busy "
                             "shared machine fewer (even 1) can be faster.")


class AliasedOption(click.Option):
    """An option with older spellings that still work but are not shown in ``--help``."""

    def __init__(self, *args: Any, hidden_aliases: tuple[str, ...] = (), **kwargs: Any):
        declarations = list(args[0]) + list(hidden_aliases)
        super().__init__(declarations, *args[1:], **kwargs)
        self.hidden_aliases = hidden_aliases

    def get_help_record(self, ctx: click.Context):
        record = super().get_help_record(ctx)
        if record is None:
            return None
        names, text = record
        parts = names.split(", ")
        metavar = parts[-1].partition(" ")[2]  # click writes the metavar after the last spelling only
        shown = [part.split(" ")[0] for part in parts if part.split(" ")[0] not in self.hidden_aliases]
        return ", ".join(shown) + (f" {metavar}" if metavar else ""), text


def output_option(default: Optional[str], help: str, path_type: type = Path, **kwargs: Any) -> Callable:
    """``-o/--output PATH`` (the older ``--out`` still works, hidden). ``path_type=str`` keeps a trailing slash,
    which says "a folder" where the option may name a file or a folder."""
    return click.option("-o", "--output", "output", cls=AliasedOption, hidden_aliases=("--out",),
                        type=click.Path(path_type=path_type), default=default, show_default=default is not None,
                        help=help, **kwargs)
