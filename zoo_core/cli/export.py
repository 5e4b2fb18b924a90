"""``zoo export`` (TorchScript or AOTInductor, for C++ hosts) and ``zoo inspect`` (what a file holds, and does it run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import click

from ..errors import ZooError
from . import warn

SUFFIXES = {"torchscript": ".ts.pt", "aoti": ".pt2"}


def load_for_export(name: str):
    """The model with its released weights, or with initialised parameters (and a warning) when it has none."""
    from ..registry import create_model, resolve

    entry, variant = resolve(name)
    if variant is None:
        warn(f"{entry.name} has no released weights: exporting initialised parameters (metadata \"weights\": null)")
        return create_model(entry.name).eval(), entry
    from ..weights import load_model

    return load_model(entry.name, variant.name).eval(), entry


@click.command("export")
@click.argument("model")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="File to write [default: ./MODEL.ts.pt or ./MODEL.pt2].")
@click.option("--format", "fmt", type=click.Choice(sorted(SUFFIXES)), default="torchscript", show_default=True)
@click.option("--device", default="cpu", show_default=True, help="Also check (and with --freeze, freeze) on this device.")
@click.option("--freeze", is_flag=True, help="Write a TorchScript file frozen for --device, named NAME.frozen-DEVICE.ts.pt.")
@click.option("--segment", type=click.IntRange(min=2), help="Default segment length (samples) stored for hosts.")
@click.option("--overlap", type=click.IntRange(min=0), help="Default overlap (samples) stored for hosts.")
def export_command(
    model: str, output: Optional[Path], fmt: str, device: str, freeze: bool, segment: Optional[int], overlap: Optional[int]
) -> None:
    """Export MODEL[:VARIANT] for deployment: a self-checked TorchScript file or an AOTInductor package."""
    if fmt == "aoti" and (freeze or device != "cpu"):
        raise ZooError("--format aoti compiles for the CPU only; --freeze and --device apply to TorchScript")
    from ..export.torchscript import resolve_device
    from ..registry import split_name

    resolve_device(device)  # before loading weights: an unusable device is the cheaper error
    path = output or Path(f"{split_name(model)[0]}{SUFFIXES[fmt]}")
    separation_model, entry = load_for_export(model)
    if fmt == "aoti":
        from ..export.aoti import export_aoti

        click.echo(f"compiling {entry.name} with AOTInductor (the system C++ compiler; this takes a minute or two)", err=True)
        result = export_aoti(separation_model, entry, path, segment=segment, overlap=overlap)
    else:
        from ..export.torchscript import export_torchscript

        result = export_torchscript(
            separation_model, entry, path, device=device, freeze=freeze, segment=segment, overlap=overlap
        )
    weights = result.metadata["weights"]
    described = f"weights {weights['variant']} ({str(weights['sha256'])[:12]})" if weights else "initialised parameters"
    worst = max(c.relative_error for c in result.checks)
    click.echo(f"wrote {result.path}: {entry.name}, {described}; {len(result.checks)} checks against eager passed "
               f"(worst relative error {worst:.1e})")


@click.command("inspect")
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
