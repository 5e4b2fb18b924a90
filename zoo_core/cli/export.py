"""``zoo export`` (TorchScript, AOTInductor or ONNX) and ``zoo inspect`` (what a file holds, and does it run)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import click

from ..errors import ZooError
from .messages import warn
from .options import device_option, output_option, threads_option

SUFFIXES = {"torchscript": ".ts.pt", "aoti": ".pt2", "onnx": ".onnx"}


def model_for_export(name: str, weights: Optional[Path], stft: Optional[str], init: bool):
    """The model to export: ``--init`` initialised parameters, ``--weights`` a file's, else the named variant
    from the cache (any released, imported or trained one; released ones are pulled when needed). A model that has
    no weights anywhere is exported initialised, after a warning (``"weights": null`` in its metadata)."""
    from ..loading import load
    from ..registry import get_entry, split_name
    from ..weights.cache import cached_variants

    entry = get_entry(name)
    if weights is not None and not init:
        return load(weights, model=name, stft=stft), entry
    if not init and split_name(name)[1] is None and entry.default_variant is None and not cached_variants(entry):
        warn(f"{entry.name} has no released or cached weights: exporting initialised parameters "
             "(metadata \"weights\": null); pass --init to say so, or --weights PATH")
        init = True
    return load(name, init=init), entry


# a file of these formats is recognised by its name: torch requires .pt2 for a package, and an ONNX protobuf has
# no signature, so `zoo inspect` and the hosts tell it by .onnx
NAMED_BY_SUFFIX = {".onnx": "onnx", ".pt2": "aoti"}
FORMAT_NAMES = {"torchscript": "TorchScript", "aoti": "AOTInductor", "onnx": "ONNX"}


def _a(name: str) -> str:
    return f"{'an' if name[0] in 'AEIOU' else 'a'} {name}"


def output_and_format(output: Optional[str], model: str, fmt: Optional[str]) -> tuple[Path, str]:
    """Where ``zoo export`` writes and in which format.

    ``-o FILE`` as given, its format following its suffix (``.onnx`` ONNX, ``.pt2`` AOTInductor, else
    TorchScript); a ``--format`` the name contradicts is refused. ``-o DIR/``, an existing folder or a name without
    a suffix is a folder that gets MODEL's default file name inside; no ``-o``: that name here."""
    from ..registry import split_name

    if output is not None and not output.endswith(("/", os.sep)) and not Path(output).is_dir() and Path(output).suffix:
        path = Path(output)
        named = NAMED_BY_SUFFIX.get(path.suffix.lower(), "torchscript")
        if fmt is not None and fmt != named:
            needs = SUFFIXES[fmt] if fmt != "torchscript" else "another suffix (e.g. .ts.pt)"
            raise ZooError(f"-o {output} names {_a(FORMAT_NAMES[named])} file but --format {fmt} writes "
                           f"{_a(FORMAT_NAMES[fmt])} file: name it with {needs}, or leave --format out")
        return path, named
    fmt = fmt or "torchscript"
    name = split_name(model)[0] + SUFFIXES[fmt]
    return (Path(name) if output is None else Path(output) / name), fmt


@click.command("export", short_help="Export a model for deployment (TorchScript, AOTInductor, ONNX).")
@click.argument("model")
@output_option(None, "File to write (its suffix chooses the format: .onnx, .pt2, else TorchScript), or a folder "
                     "to write MODEL.ts.pt / MODEL.pt2 / MODEL.onnx into (a name without a suffix; created if needed) "
                     "[default: ./MODEL.ts.pt, ./MODEL.pt2 or ./MODEL.onnx].", path_type=str)
@click.option("--format", "fmt", type=click.Choice(sorted(SUFFIXES)), default=None,
              help="The file format [default: the one -o's suffix names, else torchscript].")
@click.option("--weights", type=click.Path(path_type=Path), help="Export the weights of this file (a checkpoint in "
              "any layout `zoo import` reads, or svs-zoo safetensors) instead of a cached variant.")
@click.option("--stft", metavar="VARIANT|KEY=VALUE,...", help="With --weights: the STFT the weights were trained "
              "with, when the file does not say (see `zoo import --help`).")
@click.option("--init", is_flag=True, help="Export freshly initialised parameters (metadata \"weights\": null).")
@device_option("TorchScript: also check (and with --freeze, freeze) on this device; AOTInductor: compile for it; "
               "auto: CUDA when present, else the CPU (ONNX: always the CPU).")
@threads_option()
@click.option("--freeze", is_flag=True, help="Write a TorchScript file frozen for --device, named NAME.frozen-DEVICE.ts.pt.")
@click.option("--segment", type=float, metavar="SECONDS",
              help="Default segment length stored for hosts [default: the model's training window].")
@click.option("--overlap", type=float, metavar="FRACTION",
              help="Default overlap stored for hosts, a fraction of the segment [default: the model's].")
def export_command(
    model: str, output: Optional[str], fmt: Optional[str], weights: Optional[Path], stft: Optional[str], init: bool,
    device: str, threads: Optional[int], freeze: bool, segment: Optional[float], overlap: Optional[float],
) -> None:
    """Export MODEL[:VARIANT] for deployment: a self-checked TorchScript file, an AOTInductor package or an
    ONNX file (the spectrogram core; needs pip install 'svs-zoo[onnx]').

    The file is written only after its output was checked against the eager model. Segment and overlap are
    the defaults a host uses for long inputs, in the same units as `zoo separate` (seconds, a fraction).
    """
    from ..devices import AUTO, parse_device
    from ..export.support import check_supported
    from ..export.torchscript import resolve_device
    from ..files import check_writable
    from ..registry import get_entry
    from ..separation import SeparationSettings
    from ..threads import apply_threads, resolve_threads

    from ..ensemble.names import is_composite

    composite = is_composite(model)  # an avg-wave ensemble of checkpoints exports as one file (zoo_core.ensemble.export)
    if composite and (init or weights is not None or stft is not None):
        raise ZooError("an ensemble exports its members' cached weights; --init, --weights and --stft apply to one model")
    path, fmt = output_and_format(output, _file_stem(model) if composite else model, fmt)
    apply_threads(resolve_threads(threads))  # the checks run the model, several times
    if fmt == "aoti" and freeze:
        raise ZooError("--freeze applies to TorchScript; --format aoti compiles for --device (cpu or cuda) anyway")
    if fmt == "onnx" and (freeze or parse_device(device) not in (AUTO, "cpu")):
        raise ZooError("--format onnx is checked with ONNX Runtime on the CPU; --freeze and --device apply to "
                       "TorchScript and AOTInductor")
    if init and weights is not None:
        raise ZooError("give either --init or --weights, not both")
    if stft is not None and weights is None:
        raise ZooError("--stft describes a --weights file; cached variants carry their STFT settings")
    options = SeparationSettings(segment=segment, overlap=overlap)
    options.validate()
    device = "cpu" if fmt == "onnx" else str(resolve_device(device))  # before the weights: the cheaper error
    check_writable(path)
    check_supported(get_entry(_first_member(model) if composite else model), fmt)  # what the architecture or block declares it cannot do
    if fmt == "onnx":
        from ..export.onnx import check_onnx_available

        check_onnx_available()
    if composite:
        from ..ensemble.export import ensemble_for_export

        separation_model, entry, _ = ensemble_for_export(model)
    else:
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


def _file_stem(name: str) -> str:
    from ..ensemble.names import folder_name, parse_spec

    return folder_name(parse_spec(name))


def _first_member(name: str) -> str:
    from ..ensemble.export import first_member

    return first_member(name)


@click.command("inspect", short_help="Summarise an exported file and self-check it.")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the file's whole metadata (zoo.json) and the self-check "
              "as one JSON object instead of the summary.")
def inspect_command(file: Path, as_json: bool) -> None:
    """Summarise what an exported FILE holds (model, format, stems, framing, weights) and run a short self-check."""
    from ..export.inspect import inspect_artifact, summary_lines

    inspection = inspect_artifact(file)
    if as_json:
        click.echo(json.dumps({"path": str(inspection.path), "format": inspection.format,
                               "self_check": inspection.self_check, "metadata": inspection.metadata}, indent=2))
    else:
        click.echo("\n".join(summary_lines(inspection)))
    if not inspection.self_check.startswith("ok"):
        raise ZooError(f"{file}: self-check failed", exit_code=1)
