"""``zoo export`` (TorchScript, AOTInductor or ONNX) and ``zoo inspect`` (what a file holds, and does it run)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import click

from ..errors import ZooError
from . import warn
from .options import output_option

SUFFIXES = {"torchscript": ".ts.pt", "aoti": ".pt2", "onnx": ".onnx"}


def model_for_export(name: str, weights: Optional[Path], stft: Optional[str], init: bool):
    """The model to export: ``--init`` initialised parameters, ``--weights`` a file's, else the named variant
    from the cache (any released, imported or trained one; released ones are pulled when needed). A model that has
    no weights anywhere is exported initialised, after a warning (``"weights": null`` in its metadata)."""
    from ..registry import create_model, get_entry, split_name
    from ..weights import load_model
    from ..weights.cache import cached_variants
    from ..weights.load import load_weights_file

    entry = get_entry(name)
    if init:
        return create_model(name).eval(), entry
    if weights is not None:
        return load_weights_file(name, weights, stft), entry
    if split_name(name)[1] is None and entry.default_variant is None and not cached_variants(entry):
        warn(f"{entry.name} has no released or cached weights: exporting initialised parameters "
             "(metadata \"weights\": null); pass --init to say so, or --weights PATH")
        return create_model(name).eval(), entry
    return load_model(name), entry


def output_path(output: Optional[str], model: str, fmt: str) -> Path:
    """``-o FILE`` as given; ``-o DIR/`` (or an existing folder) gets the default name inside; no ``-o``: here."""
    from ..registry import split_name

    name = split_name(model)[0] + SUFFIXES[fmt]
    if output is None:
        return Path(name)
    if output.endswith(("/", os.sep)) or Path(output).is_dir():
        return Path(output) / name
    return Path(output)


@click.command("export", short_help="Export a model for deployment (TorchScript, AOTInductor, ONNX).")
@click.argument("model")
@output_option(None, "File to write, or a folder to write MODEL.ts.pt / MODEL.pt2 / MODEL.onnx into (created if "
                     "needed; end it with / if it does not exist yet) [default: ./MODEL.ts.pt, ./MODEL.pt2 or "
                     "./MODEL.onnx].", path_type=str)
@click.option("--format", "fmt", type=click.Choice(sorted(SUFFIXES)), default="torchscript", show_default=True)
@click.option("--weights", type=click.Path(path_type=Path), help="Export the weights of this file (a checkpoint in "
              "any layout `zoo import` reads, or svs-zoo safetensors) instead of a cached variant.")
@click.option("--stft", metavar="VARIANT|KEY=VALUE,...", help="With --weights: the STFT the weights were trained "
              "with, when the file does not say (see `zoo import --help`).")
@click.option("--init", is_flag=True, help="Export freshly initialised parameters (metadata \"weights\": null).")
@click.option("--device", default="cpu", show_default=True, help="TorchScript: also check (and with --freeze, freeze) "
              "on this device; AOTInductor: compile for it (cpu or cuda).")
@click.option("--freeze", is_flag=True, help="Write a TorchScript file frozen for --device, named NAME.frozen-DEVICE.ts.pt.")
@click.option("--segment", type=float, metavar="SECONDS",
              help="Default segment length stored for hosts [default: the model's training window].")
@click.option("--overlap", type=float, metavar="FRACTION",
              help="Default overlap stored for hosts, a fraction of the segment [default: the model's].")
def export_command(
    model: str, output: Optional[str], fmt: str, weights: Optional[Path], stft: Optional[str], init: bool,
    device: str, freeze: bool, segment: Optional[float], overlap: Optional[float],
) -> None:
    """Export MODEL[:VARIANT] for deployment: a self-checked TorchScript file, an AOTInductor package or an
    ONNX file (the spectrogram core; needs pip install 'svs-zoo[onnx]').

    The file is written only after its output was checked against the eager model. Segment and overlap are
    the defaults a host uses for long inputs, in the same units as `zoo separate` (seconds, a fraction).
    """
    from ..export.support import check_supported
    from ..export.torchscript import resolve_device
    from ..files import check_writable
    from ..registry import get_entry
    from ..separate import SeparationOptions

    if fmt == "aoti" and freeze:
        raise ZooError("--freeze applies to TorchScript; --format aoti compiles for --device (cpu or cuda) anyway")
    if fmt == "onnx" and (freeze or device != "cpu"):
        raise ZooError("--format onnx is checked with ONNX Runtime on the CPU; --freeze and --device apply to "
                       "TorchScript and AOTInductor")
    if init and weights is not None:
        raise ZooError("give either --init or --weights, not both")
    if stft is not None and weights is None:
        raise ZooError("--stft describes a --weights file; cached variants carry their STFT settings")
    options = SeparationOptions(segment=segment, overlap=overlap)
    options.validate()
    resolve_device(device)  # before loading weights: an unusable device is the cheaper error
    path = output_path(output, model, fmt)
    check_writable(path)
    check_supported(get_entry(model), fmt)  # what the model's architecture or block declares it cannot do
    if fmt == "onnx":
        from ..export.onnx import check_onnx_available

        check_onnx_available()
    separation_model, entry = model_for_export(model, weights, stft, init)
    segment_samples, overlap_samples = options.geometry(separation_model)
    if fmt == "aoti":
        from ..export.aoti import export_aoti

        click.echo(f"compiling {entry.name} for {device} with AOTInductor (the system C++ compiler; a minute or two)", err=True)
        result = export_aoti(separation_model, entry, path, device=device, segment=segment_samples, overlap=overlap_samples)
    elif fmt == "onnx":
        from ..export.onnx import export_onnx

        result = export_onnx(separation_model, entry, path, segment=segment_samples, overlap=overlap_samples)
    else:
        from ..export.torchscript import export_torchscript

        result = export_torchscript(
            separation_model, entry, path, device=device, freeze=freeze, segment=segment_samples, overlap=overlap_samples
        )
    described = result.metadata["weights"]
    described = f"weights {described['variant']} ({str(described['sha256'])[:12]})" if described else "initialised parameters"
    worst = max(c.relative_error for c in result.checks)
    click.echo(f"wrote {result.path}: {entry.name}, {described}; {len(result.checks)} checks against eager passed "
               f"(worst relative error {worst:.1e})")


@click.command("inspect", short_help="Show an exported file's metadata and self-check it.")
@click.argument("file", type=click.Path(path_type=Path))
def inspect_command(file: Path) -> None:
    """Print the metadata embedded in an exported FILE and run a short self-check."""
    from ..export.inspect import inspect_artifact

    inspection = inspect_artifact(file)
    click.echo(f"{inspection.path} ({inspection.format})")
    click.echo(json.dumps(inspection.metadata, indent=2))
    click.echo(f"self-check: {inspection.self_check}")
    if not inspection.self_check.startswith("ok"):
        raise ZooError(f"{file}: self-check failed", exit_code=1)
