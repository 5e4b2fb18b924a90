"""`zoo train`: train (or fine-tune, or resume) a registry model with the paper's recipe.

The same command runs under torchrun: ``torchrun --nproc_per_node N -m zoo_core.cli train MODEL ...``.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

import click

from ..errors import ConfigError, ZooError


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) not in (click.core.ParameterSource.DEFAULT, None)


def _valid_names(tracks: tuple[str, ...], listing: Optional[Path]) -> tuple[str, ...]:
    names = list(tracks)
    if listing is not None:
        try:
            names += [line.strip() for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]
        except OSError as exc:
            raise ZooError(f"{listing}: cannot read the validation list ({exc.strerror})") from None
    return tuple(names)


# option name -> TrainConfig field, for the options that map one to one
_FIELDS = (
    "musdb", "output", "init", "name", "run", "valid_seconds", "steps", "batch_size", "lr", "optimizer",
    "clip_grad", "loss", "gain_augment", "swap_augment", "valid_every", "checkpoint_every", "patience",
    "precision", "device", "workers", "seed",
)


@click.command("train", short_help="Train or fine-tune a model on MUSDB18.")
@click.argument("model", required=False, metavar="MODEL")
@click.option("--musdb", type=click.Path(path_type=Path), metavar="ROOT",
              help="MUSDB18 (.stem.mp4) or MUSDB18-HQ root, or a folder of <track>/<stem>.<ext> tracks.")
@click.option("--output", "-o", type=click.Path(path_type=Path), metavar="DIR", help="Run folder.")
@click.option("--resume", type=click.Path(path_type=Path), metavar="DIR",
              help="Continue the run in DIR from its last checkpoint (schedule and hardware options may change).")
@click.option("--init", metavar="NAME:VARIANT", help="Fine-tune from pulled weights, NAME:VARIANT of the same model.")
@click.option("--name", metavar="NAME", help="Model name in the card (default: MODEL-RUN).")
@click.option("--run", metavar="RUN", help="Variant name of the weights (default: the run folder's name).")
@click.option("--valid-track", "valid_track", multiple=True, metavar="TRACK",
              help="A validation track (repeatable). Default: MUSDB's 14 standard validation tracks.")
@click.option("--valid-list", type=click.Path(path_type=Path), metavar="FILE",
              help="A file naming validation tracks, one per line.")
@click.option("--valid-seconds", type=float, help="Validate on the middle N seconds of each track (default: whole).")
@click.option("--steps", type=int, default=100_000, show_default=True, help="Optimiser steps in all.")
@click.option("--batch-size", type=int, default=8, show_default=True, help="Segments per step and process.")
@click.option("--lr", type=float, default=1e-3, show_default=True, help="Learning rate.")
@click.option("--optimizer", type=click.Choice(["adam", "rmsprop"]), default="adam", show_default=True)
@click.option("--clip-grad", type=float, metavar="NORM", help="Clip the gradient norm to NORM.")
@click.option("--loss", type=click.Choice(["spec-mse", "wave-l1"]), default="spec-mse", show_default=True,
              help="MSE between framed spectrograms (the paper's), or L1 between waveforms.")
@click.option("--gain-augment/--no-gain-augment", default=False, help="Random gain 0.25-1.25 per stem.")
@click.option("--swap-augment/--no-swap-augment", default=False, help="Random left/right swap per stem.")
@click.option("--valid-every", type=int, default=1000, show_default=True, help="Steps between validations.")
@click.option("--checkpoint-every", type=int, help="Steps between checkpoints (default: --valid-every).")
@click.option("--patience", type=int, default=10, show_default=True,
              help="Stop after this many validations without improvement (0: never).")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default="fp32", show_default=True,
              help="Mixed precision: bf16 (autocast) on a GPU or the CPU, fp16 on a GPU.")
@click.option("--device", default="auto", show_default=True, metavar="DEVICE",
              help="auto (CUDA when present, else the CPU), cpu, cuda (under torchrun: each rank its own GPU) or cuda:N.")
@click.option("--workers", type=int, default=2, show_default=True, help="DataLoader worker processes.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.pass_context
def train_command(ctx: click.Context, model: Optional[str], resume: Optional[Path], valid_track: tuple[str, ...],
                  valid_list: Optional[Path], **options: Any) -> None:
    """Train MODEL on MUSDB18 with the paper's recipe; writes DIR/model.safetensors and DIR/card.toml.

    \b
    zoo train MODEL --musdb ROOT -o runs/small
    zoo train MODEL --init MODEL:VARIANT --musdb ROOT -o runs/fine-tuned
    zoo train --resume runs/small
    torchrun --nproc_per_node 4 -m zoo_core.cli train MODEL --musdb ROOT -o runs/large
    """
    from ..train.config import TrainConfig, load_config
    from ..train.loop import train

    given = {key: value for key, value in options.items() if key in _FIELDS and _given(ctx, key)}
    for key in ("musdb", "output"):  # absolute, so that a run resumes from any working directory
        if given.get(key) is not None:
            given[key] = str(given[key].resolve())
    valid = _valid_names(valid_track, valid_list)
    if valid:
        given["valid_tracks"] = valid
    if resume is not None:
        folder = str(resume.resolve())
        if given.pop("output", folder) != folder:
            raise ConfigError("-o and --resume name different folders; --resume DIR continues the run in DIR")
        if model is not None:
            given["model"] = model
        config = replace(load_config(resume).with_overrides(given), output=folder)
    else:
        missing = [flag for flag, value in (("MODEL", model), ("--musdb", options["musdb"]), ("-o", options["output"]))
                   if value is None]
        if missing:
            raise ConfigError(f"missing {', '.join(missing)} (or continue a run with --resume DIR)")
        values = {key: options[key] for key in _FIELDS}
        values.update(given)
        config = TrainConfig(model=model, **values)
    from ..files import check_writable_folder

    check_writable_folder(Path(config.output), "run folder")  # before any data is read or a model built
    summary = train(config, resume=resume is not None, log=lambda line: click.echo(line, err=True))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        click.echo(f"rank {rank} of {world}: step {summary.steps}, weights sha256 {summary.weights_digest}")
    if rank != 0:
        return
    click.echo(f"stopped: {summary.stopped}")
    if summary.best_step is None:
        click.echo("no validation gave a defined SDR (silent validation vocals?); the final weights were written")
    else:
        click.echo(f"best validation SDR {summary.best_sdr:.3f} dB at step {summary.best_step}")
    for line in summary.skipped:
        click.echo(f"skipped: {line}")
    click.echo(f"weights: {summary.weights}")
    click.echo(f"card: {summary.card}")
