"""`zoo separate`: files in, ``<out>/<model>_<variant>/<track>/<stem>.wav`` out; a manifest records every input,
reruns resume, and under torchrun the ranks share the inputs (`zoo_core.cli.batch`)."""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Optional

import click

from ..errors import ZooError
from .options import RunSettings, output_option, separation_options
from .runner import finish_batch


def check_artifact_options(run: RunSettings) -> None:
    """--artifact replaces -m; the options that describe how a model is loaded do not apply to a file."""
    from ..ensemble.names import is_composite

    if click.get_current_context().get_parameter_source("model_name") != click.core.ParameterSource.DEFAULT:
        raise ZooError("give either -m/--model or --artifact, not both")
    if is_composite(run.model):
        raise ZooError("--ensemble and --tta combine -m models; an exported file (--artifact) separates alone")
    if run.precision != "fp32":
        raise ZooError("--precision applies to -m models; an exported file runs at the precision it was exported with")
    if run.separation.method != "overlap-add":
        raise ZooError("--method authors needs the model itself (-m); --artifact separates with overlap-add")


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
              help="Write only these stems (e.g. vocals, vocals,drums, or accompaniment: mixture - vocals, for any "
                   "model with vocals) [default: every stem of the model, and accompaniment for a vocal model].")
@click.option("--format", "audio_format", type=click.Choice(["wav", "flac", "mp3"]), default="wav", show_default=True,
              help="Container of the outputs; mp3 is encoded by LAME at 320 kbps, constant (160 below 32 kHz).")
@click.option("--bits", type=click.Choice(["16", "24", "float"]), default=None,
              help="Sample format of wav and flac [default: float for wav, 24 for flac].")
@click.option("--force", is_flag=True, help="Overwrite existing outputs, and redo inputs the manifest records as done.")
@click.option("--manifest", "manifest_path", type=click.Path(path_type=Path), default=None,
              help="JSON-lines record of every input (outputs, model, settings, time, status, error); a rerun "
                   "skips the inputs it records as done with the same settings [default: OUTPUT/manifest.jsonl].")
@click.option("--distributed", is_flag=True,
              help="Under torchrun: each rank separates its share of the inputs (balanced by duration), on its "
                   "own GPU with --device cuda. `torchrun ... -m zoo_core.cli separate` turns this on.")
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
    manifest_path: Optional[Path],
    distributed: bool,
    artifact: Optional[Path],
    quiet: bool,
    as_json: bool,
) -> None:
    """Separate INPUTS (audio files, or folders of them) into the model's stems.

    Reads WAV, FLAC, OGG, MP3 and MP4/M4A/AAC (stream 0 of a MUSDB .stem.mp4, the mixture); mono or stereo,
    any sample rate and length. Writes one file per stem (vocals and accompaniment = mixture - vocals for the
    paper's vocal models), each with the input's rate, channels and length. Files are processed block by block,
    so memory does not grow with length. With --artifact, an exported file separates through the same
    overlap-add (ONNX files through ONNX Runtime). Every input is recorded in the manifest; a rerun (after a
    crash, a kill or a failure) skips what is complete and does the rest.
    """
    from ..audio import subtype_for
    from ..manifest import MANIFEST_NAME
    from ..files import check_writable, check_writable_folder
    from ..train import distributed as ranks

    subtype_for(audio_format, bits)
    if artifact is not None:
        check_artifact_options(run)
    stems = parse_stems(stem_list)
    check_writable_folder(output)
    manifest_path = manifest_path or output / MANIFEST_NAME
    check_writable(manifest_path, "manifest")
    if distributed and "WORLD_SIZE" not in os.environ:
        raise ZooError("--distributed runs under torchrun, which says each process's rank: "
                       "torchrun --nproc_per_node K -m zoo_core.cli separate INPUTS ...")
    if ranks.under_torchrun() and not distributed:
        raise ZooError(f"started by torchrun among {os.environ['WORLD_SIZE']} processes: add --distributed so that "
                       "they share the inputs instead of each separating all of them")
    if distributed and run.jobs > 1:
        raise ZooError("--jobs does not combine with --distributed: torchrun's --nproc_per_node sets the processes")
    from .batch import BatchRun

    context = ranks.setup(run.device if distributed else "cpu", backend="gloo", timeout=CATALOGUE_TIMEOUT) \
        if distributed else None
    try:
        job = BatchRun(inputs=list(inputs), settings=run, output=output, stems=stems, audio_format=audio_format, bits=bits,
                        force=force, manifest=manifest_path, context=context, quiet=quiet, artifact=artifact)
        summary, failures, total = job.run()
    finally:
        if context is not None:
            ranks.teardown()
    if summary is None:  # a rank other than 0: rank 0 reports for everyone
        return
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    finish_batch(failures, total, "files")


# ranks that finish their share early wait for the others at the end (static shares, no work stealing)
CATALOGUE_TIMEOUT = datetime.timedelta(days=7)
