"""`zoo ensemble fit`: weights per stem and a greedy choice of members fitted on tracks with true stems,
written as a named ensemble that `zoo list` shows and ``zoo separate -m NAME`` runs (`zoo_core.ensemble`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from ..errors import ZooError
from .options import device_option, threads_option


@click.group("ensemble", short_help="Fit ensembles of models on tracks with true stems.")
def ensemble_group() -> None:
    """Ensembles: several models as one (zoo separate -m A -m B --ensemble RULE runs one without fitting)."""


@ensemble_group.command("fit")
@click.argument("tracks", nargs=-1, type=click.Path(path_type=Path))
@click.option("-m", "--model", "models", multiple=True, required=True, metavar="NAME[:VARIANT]",
              help="A candidate member (give two or more).")
@click.option("--musdb", "musdb_root", type=click.Path(path_type=Path), default=None,
              help="MUSDB18 or MUSDB18-HQ root; its --subset tracks are the fitting set.")
@click.option("--subset", type=click.Choice(["train", "test"]), default="train", show_default=True)
@click.option("--name", required=True, help="The ensemble's name (zoo separate -m NAME).")
@click.option("--tta", is_flag=True, help="Members with test-time augmentation.")
@click.option("--segment", type=float, default=None, metavar="SECONDS", help="Segment length [default: each model's].")
@click.option("--overlap", type=float, default=None, metavar="FRACTION", help="Overlap [default: each model's].")
@click.option("--force", is_flag=True, help="Replace an ensemble of that name.")
@device_option()
@threads_option()
def fit_command(tracks: tuple[Path, ...], models: tuple[str, ...], musdb_root: Optional[Path], subset: str, name: str,
                tta: bool, segment: Optional[float], overlap: Optional[float], force: bool, device: str,
                threads: Optional[int]) -> None:
    """Fit an avg-wave ensemble of the -m models on TRACKS (.stem.mp4 files or MUSDB18-HQ track folders) or a
    --musdb subset: per stem, start from the best member and add members while SDR (museval v4, median over
    1-s frames, mean over tracks) rises. Prints each stem's weights, the gain over the best member with a 95%
    bootstrap interval (over tracks; over 1-s frames for one track), and writes [ensembles.NAME] to
    $ZOO_HOME/ensembles.toml. The gain is measured on the fitting tracks themselves: evaluate on other tracks
    (zoo eval -m NAME) for an unbiased figure."""
    from ..devices import parse_device
    from ..ensemble.fit import fit
    from ..ensemble.names import Augmented, format_spec
    from ..ensemble.store import check_new_name, ensembles_file, named_ensembles, save_ensemble
    from ..evaluate import check_track_source, find_musdb_tracks
    from ..loading import load
    from ..separation import SeparationSettings
    from ..threads import apply_threads, resolve_threads
    from .runner import check_segment

    check_new_name(name)
    if name in named_ensembles() and not force:
        raise ZooError(f"an ensemble {name!r} exists ({ensembles_file()}); pass --force to replace it")
    if len(set(models)) < 2:
        raise ZooError("give at least two different models to choose from: -m A -m B")
    if bool(tracks) == bool(musdb_root):
        raise ZooError("give either TRACKS or --musdb ROOT")
    sources = find_musdb_tracks(musdb_root, subset) if musdb_root is not None else [check_track_source(p) for p in tracks]
    apply_threads(resolve_threads(threads))
    options = SeparationSettings(segment=segment, overlap=overlap)
    options.validate()
    labels = [format_spec(Augmented(m)) if tta else m for m in dict.fromkeys(models)]
    loaded = {}
    for label in labels:
        loaded[label] = load(label, device=parse_device(device), precision="fp32")
        check_segment(loaded[label], options)
    fits = fit(loaded, sources, options, progress=lambda line: click.echo(line, err=True))
    chosen = [label for label in labels if any(label in f.weights for f in fits)]
    weights = {f.stem: [round(f.weights.get(label, 0.0), 4) for label in chosen] for f in fits}
    over = f"{len(sources)} track{'s' if len(sources) > 1 else ''}"
    lines = []
    for f in fits:
        mix = " + ".join(f"{w:.2f} {m}" for m, w in f.weights.items())
        lines.append(f"{f.stem}: {mix} = {f.value:.3f} dB; best member {f.best_member} {f.best_value:.3f} dB; "
                     f"gain {f.gain:+.3f} dB (95% CI {f.interval[0]:+.3f} to {f.interval[1]:+.3f}, bootstrap over "
                     f"{f.interval_over})")
    for line in lines:
        click.echo(line)
    if len(chosen) < 2:  # one member won every stem: that member is the ensemble
        click.echo(f"no combination beats {chosen[0]} alone on {over}; nothing written (use -m {chosen[0]})")
        return
    table = {
        "rule": "avg-wave",
        "members": chosen,
        "weights": weights,
        "description": f"fitted by zoo ensemble fit on {over} ({', '.join(s.name for s in sources[:3])}"
                       f"{', ...' if len(sources) > 3 else ''}): " + "; ".join(lines),
        "gain_db": {f.stem: round(f.gain, 4) for f in fits},
        "gain_interval_db": {f.stem: [round(f.interval[0], 4), round(f.interval[1], 4)] for f in fits},
    }
    path = save_ensemble(name, table, force=force)
    click.echo(f"wrote [ensembles.{name}] to {path}: zoo separate -m {name}")
