"""`zoo demo`: separate the MUSDB clip bundled with stempeg and print its SDR."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..builtin import default_model
from .options import device_option, output_option


@click.command("demo", short_help="Separate a real song clip and print its SDR.")
@click.option("-m", "--model", "model_name", default=default_model(), show_default=True, help="Model NAME[:VARIANT].")
@output_option("separated", "Stems go to OUTPUT/<model>_<variant>/<track>/ (the demo's own earlier outputs are replaced).")
@device_option()
def demo_command(model_name: str, output: Path, device: str) -> None:
    """Separate a real song clip and score it: the zoo's main job in one command.

    Pulls the model's weights (ZOO_WEIGHTS_MIRROR or the network), separates the 6-s MUSDB18 clip that ships
    with the stempeg package (mixture = stream 0), writes vocals and accompaniment, and prints their SDR
    against the true stems (museval v4 definition, median over 1-s frames) and the time taken.
    """
    from ..demo import find_demo_clip, run_demo
    from ..files import check_writable_folder
    from ..loading import load

    started = time.perf_counter()
    check_writable_folder(output)
    clip = find_demo_clip()
    model = load(model_name, device=device, precision="fp32")
    result = run_demo(model, output, clip, started)
    info = result.weights
    seconds = result.track.mixture.shape[1] / result.track.sample_rate
    where = next(model.parameters()).device
    click.echo(f"model     {info.get('model', model_name)}:{info.get('variant', '?')} on {where}")
    click.echo(f"clip      {result.clip.name} ({seconds:.1f} s, mixture = stream 0)")
    for stem, path in result.outputs.items():
        click.echo(f"wrote     {path}")
    for stem, value in result.sdr.items():
        click.echo(f"{stem + ' SDR':<19}{value:6.2f} dB")
    click.echo("          (museval v4 SDR of the written files against the true stems, median over 1-s frames)")
    click.echo(f"time      {result.separation_seconds:.1f} s separation, {result.total_seconds:.1f} s in all")
