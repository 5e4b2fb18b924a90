"""`zoo separate`: files in, ``<out>/<model>_<variant>/<track>/<stem>.wav`` out."""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Optional, Sequence

import click

from ..errors import ZooError
from ..separate import SeparationOptions, separate_file
from .options import RunSettings, output_option, separation_options
from .runner import ProgressDisplay, finish_batch, load_for_inference, run_items


def expand_inputs(paths: Sequence[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Files as given; a folder stands for the audio files directly inside it. Two inputs with one track name
    would write the same outputs, so the later ones are refused. Returns (files, [(input, problem)])."""
    from ..audio import AUDIO_EXTENSIONS, is_audio_file, track_name

    files: list[Path] = []
    problems: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if is_audio_file(p))
            if not found:
                problems.append((path, f"{path}: no audio files in this folder ({', '.join(AUDIO_EXTENSIONS)})"))
            files.extend(found)
        else:
            files.append(path)
    seen: dict[str, Path] = {}
    unique = []
    for path in files:
        name = track_name(path)
        if name in seen:
            problems.append((path, f"{path}: same track name as {seen[name]}; the outputs would collide"))
        else:
            seen[name] = path
            unique.append(path)
    return unique, problems


def _separate_one(model, path: Path, *, out_dir: Path, options: SeparationOptions, stems: Optional[list[str]],
                  audio_format: str, bits: Optional[str], force: bool, on_start, progress) -> dict:
    return separate_file(model, path, out_dir, options=options, stems=stems, format=audio_format, bits=bits,
                         force=force, on_start=on_start, progress=progress).as_dict()


def check_artifact_options(run: RunSettings) -> None:
    """--artifact replaces -m; the options that describe how a model is loaded do not apply to a file."""
    if click.get_current_context().get_parameter_source("model_name") != click.core.ParameterSource.DEFAULT:
        raise ZooError("give either -m/--model or --artifact, not both")
    if run.precision != "fp32":
        raise ZooError("--precision applies to -m models; an exported file runs at the precision it was exported with")
    if run.separation.method != "overlap-add":
        raise ZooError("--method authors needs the model itself (-m); --artifact separates with overlap-add")


def open_artifact_model(path: Path, device: str):
    from ..hosts import open_artifact

    return open_artifact(path, device)


def parse_stems(value: Optional[str]) -> Optional[list[str]]:
    """``--stems vocals,drums`` → ``["vocals", "drums"]``; None keeps every stem."""
    if value is None:
        return None
    stems = [stem.strip() for stem in value.split(",") if stem.strip()]
    if not stems:
        raise ZooError("--stems needs at least one stem name, e.g. --stems vocals")
    return stems


@click.command("separate", short_help="Separate audio files into stems.")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@separation_options
@output_option("separated", "Outputs go to OUTPUT/<model>_<variant>/<track>/<stem>.<format>.")
@click.option("--stems", "stem_list", metavar="NAME,...",
              help="Write only these stems (e.g. vocals or vocals,drums) [default: every stem of the model].")
@click.option("--format", "audio_format", type=click.Choice(["wav", "flac"]), default="wav", show_default=True)
@click.option("--bits", type=click.Choice(["16", "24", "float"]), default=None,
              help="Sample format [default: float for wav, 24 for flac].")
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("--artifact", type=click.Path(path_type=Path), metavar="FILE",
              help="Separate with an exported file (zoo export: .ts.pt, .pt2 or .onnx) instead of -m MODEL; "
                   "its framing comes from the file's metadata alone.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or per-file lines (errors are still printed).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
def separate_command(
    inputs: tuple[Path, ...],
    run: RunSettings,
    output: Path,
    stem_list: Optional[str],
    audio_format: str,
    bits: Optional[str],
    force: bool,
    artifact: Optional[Path],
    quiet: bool,
    as_json: bool,
) -> None:
    """Separate INPUTS (audio files, or folders of them) into the model's stems.

    Reads WAV, FLAC, OGG, MP3 and MP4/M4A/AAC (stream 0 of a MUSDB .stem.mp4, the mixture); mono or stereo,
    any sample rate and length. Writes one file per stem (vocals and accompaniment = mixture - vocals for the
    paper's vocal models), each with the input's rate, channels and length. Files are processed block by block,
    so memory does not grow with length. With --artifact, an exported file separates through the same
    overlap-add (ONNX files through ONNX Runtime).
    """
    from ..audio import subtype_for
    from ..files import check_writable_folder

    subtype_for(audio_format, bits)
    if artifact is not None:
        check_artifact_options(run)
    stems = parse_stems(stem_list)
    check_writable_folder(output)
    started = time.perf_counter()
    files, problems = expand_inputs(inputs)
    for _, message in problems:
        click.echo(f"error: {message}", err=True)
    failures: list[tuple[str, int]] = [(message, 2) for _, message in problems]
    errors: list[dict] = [{"input": str(path), "error": message} for path, message in problems]
    results: list[dict] = []
    model = None
    if files:
        model = open_artifact_model(artifact, run.device) if artifact else load_for_inference(run.model, run.device, run.precision)
    if model is not None:
        from ..separate import choose_stems

        choose_stems(model, stems)  # an unknown stem name fails before any work
        run.separation.geometry(model)  # and so does a segment the model cannot use
    work = functools.partial(_separate_one, out_dir=output, options=run.separation, stems=stems,
                             audio_format=audio_format, bits=bits, force=force)

    with ProgressDisplay(len(files), quiet or not files, "files") as display:

        def on_done(key: int, result: Optional[dict], error: Optional[tuple[str, int]]) -> None:
            if error is not None:
                failures.append(error)
                errors.append({"input": str(files[key]), "error": error[0]})
                display.error(error[0])
                return
            results.append(result)
            for warning in result.get("warnings", []):
                display.warn(warning)
            if not quiet:
                folder = Path(next(iter(result["outputs"].values()))).parent
                display.print(f"{result['input']} -> {folder}/ ({result['seconds']:.1f} s)")

        if files:
            run_items(files, [p.name for p in files], work, model=model, model_name=run.model, device=run.device,
                      jobs=run.jobs, display=display, on_done=on_done, precision=run.precision, artifact=artifact)
    if as_json:
        summary = {
            "model": run.model if artifact is None else (model.entry_name if model is not None else None),
            **({"artifact": str(artifact)} if artifact is not None else {}),
            "method": run.separation.method,
            "separated": results,
            "failed": errors,
            "seconds": round(time.perf_counter() - started, 3),
        }
        click.echo(json.dumps(summary, indent=2))
    finish_batch(failures, len(files) + len(problems), "files")
