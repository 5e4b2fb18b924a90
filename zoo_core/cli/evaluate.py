"""`zoo eval`: separate MUSDB18 tracks and score them with museval (or the fast exact SDR)."""

from __future__ import annotations

import functools
import json
import math
import os
import sys
from pathlib import Path
from typing import Optional

import click

from ..errors import ZooError
from .options import RunSettings, output_option, separation_options
from ..loading import load
from .runner import ProgressDisplay, check_segment, finish_batch, run_items


def _evaluate_one(model, source, *, settings: dict, on_start, progress):
    from ..evaluate import evaluate_track

    on_start(0)  # no sample count: a track is loaded, separated and scored in one go
    return evaluate_track(model, source, **settings)


def _json_safe(value):
    """NaN (a track or frame with no defined value) as null, so that the output is valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value


def _print_table(aggregate: dict, tracks: int, model_name: str, sdr_only: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..evaluate import AGGREGATION, METRICS, MIXTURE_NOTE

    metrics = [m for m in METRICS if any(m in values for values in aggregate.values())]
    table = Table(header_style="bold")
    table.add_column("target")
    for metric in metrics:
        table.add_column(metric, justify="right")
    for target, values in aggregate.items():
        table.add_row(target, *(f"{values[m]:.3f}" if not math.isnan(values[m]) else "nan" for m in metrics))
    width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", 120))
    console = Console(width=width)
    scores = "SDR only (fast, exact)" if sdr_only else "SDR, SIR, ISR, SAR"
    console.print(f"{model_name} on {tracks} track(s): museval v4 {scores}, dB", highlight=False, markup=False)
    console.print(table)
    console.print(f"aggregation: {AGGREGATION}\n{MIXTURE_NOTE}", highlight=False, markup=False)


@click.command("eval", short_help="Separate MUSDB18 tracks and score them with museval.")
@click.argument("tracks", nargs=-1, type=click.Path(path_type=Path))
@click.option("--musdb", "musdb_root", type=click.Path(path_type=Path), default=None,
              help="MUSDB18 root (train/ and test/ of .stem.mp4) or MUSDB18-HQ root (test/<track>/mixture.wav ...).")
@click.option("--subset", type=click.Choice(["train", "test"]), default="test", show_default=True)
@separation_options
@output_option(None, "Write museval's per-track JSON (and --plot PNGs) here, as OUTPUT/<subset>/<track>.json.")
@click.option("--sdr-only", is_flag=True, help="Only SDR, with svs-zoo's fast exact museval-v4 SDR (no museval).")
@click.option("--plot", is_flag=True, help="A PNG per track: spectrograms and per-frame SDR (needs -o).")
@click.option("-q", "--quiet", is_flag=True, help="No progress or per-track lines.")
@click.option("--json", "as_json", is_flag=True, help="Print per-track and aggregate scores as JSON instead of a table.")
def eval_command(
    tracks: tuple[Path, ...],
    musdb_root: Optional[Path],
    subset: str,
    run: RunSettings,
    output: Optional[Path],
    sdr_only: bool,
    plot: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Separate and score TRACKS (.stem.mp4 files or MUSDB18-HQ track folders) or a whole --musdb subset.

    Every stem the model gives that MUSDB18 defines is scored against its reference (vocals, and accompaniment
    = drums + bass + other, for the paper's models; each source for a four-stem model) with museval v4 on 1-s
    frames; the table is the SiSEC 2018 aggregate: median over frames per track, then median over tracks. The
    mixture is stream 0 of a stem file (the released mixture).
    """
    from ..evaluate import AGGREGATION, MIXTURE_NOTE, aggregate, check_track_source, find_musdb_tracks, import_museval
    from ..files import check_writable_folder

    if bool(tracks) == bool(musdb_root):
        raise ZooError("give either TRACKS or --musdb ROOT")
    if plot and output is None:
        raise ZooError("--plot writes PNG files: give -o/--output")
    if output is not None:
        check_writable_folder(output)  # before any separation: a long run must not die at its end
    if not sdr_only:
        import_museval()  # fail before any separation when museval cannot run here
    failures: list[tuple[str, int]] = []
    if musdb_root is not None:
        sources = find_musdb_tracks(musdb_root, subset)
    else:
        sources = []
        for path in tracks:
            try:
                sources.append(check_track_source(path))
            except ZooError as exc:
                click.echo(f"error: {exc}", err=True)
                failures.append((str(exc), exc.exit_code))
    total = len(sources) + len(failures)
    separation = run.separation
    settings = dict(
        out_dir=output,
        model_name=run.model,
        sdr_only=sdr_only,
        plot=plot,
        separation=dict(segment=separation.segment, overlap=separation.overlap, batch_size=separation.batch_size,
                        method=separation.method),
    )
    results = []
    model = load(run.model, device=run.device, precision=run.precision) if sources else None
    if model is not None:
        check_segment(model, separation, min(run.jobs, len(sources)))

    with ProgressDisplay(len(sources), quiet or not sources, "tracks") as display:

        def on_done(key: int, result, error: Optional[tuple[str, int]]) -> None:
            if error is not None:
                failures.append(error)
                display.error(error[0])
                return
            results.append(result)
            if not quiet:
                medians = ", ".join(f"{stem} SDR {values['SDR']:.3f} dB" for stem, values in result.summary.items())
                display.print(f"{result.name}: {medians} (median over frames)")

        if sources:
            run_items(
                sources,
                [source.name for source in sources],
                functools.partial(_evaluate_one, settings=settings),
                model=model,
                model_name=run.model,
                device=run.device,
                jobs=run.jobs,
                display=display,
                on_done=on_done,
                precision=run.precision,
                threads=run.threads,
            )
    results.sort(key=lambda result: result.name)
    overall = aggregate([result.summary for result in results])
    if as_json:
        document = {
            "model": run.model,
            "metrics": "SDR (svs-zoo fast museval-v4 SDR)" if sdr_only else "museval v4 SDR, ISR, SIR, SAR",
            "aggregation": AGGREGATION,
            "mixture": MIXTURE_NOTE,
            "tracks": [result.as_dict() for result in results],
            "aggregate": overall,
            "failed": [message for message, _ in failures],
        }
        click.echo(json.dumps(_json_safe(document), indent=2))
    elif results:
        _print_table(overall, len(results), run.model, sdr_only)
    finish_batch(failures, total, "tracks")
