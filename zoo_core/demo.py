"""`zoo demo`: the zoo's main job on real music, in one command.

The MUSDB18 clip "The Easton Ellises - Falcon 69" (a 6-s preview, CC BY-NC-SA 3.0) ships inside the PyPI
package ``stempeg``. It is found without importing stempeg (its import insists on the ffmpeg programs) and
decoded with PyAV. The model separates the mixture (stream 0) with the default overlap-add, every stem is
written, read back, and scored against the true stems with the fast exact museval-v4 SDR (median over 1-s
frames): the printed figures are those of the files on disk.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .audio import read_audio, write_audio
from .errors import ZooError
from .evaluate import Track, load_track, score, track_summary
from .musdb import open_track
from .separation import model_folder, separate

CLIP_NAME = "The Easton Ellises - Falcon 69.stem.mp4"


def find_demo_clip() -> Path:
    """The MUSDB clip bundled with the ``stempeg`` package."""
    spec = importlib.util.find_spec("stempeg")
    if spec is None or not spec.submodule_search_locations:
        raise ZooError("the demo clip ships with the stempeg package: pip install stempeg", exit_code=1)
    clip = Path(next(iter(spec.submodule_search_locations))) / "data" / CLIP_NAME
    if not clip.is_file():
        raise ZooError(f"the stempeg package has no {CLIP_NAME} (looked for {clip})", exit_code=1)
    return clip


@dataclass
class DemoResult:
    clip: Path
    track: Track
    outputs: dict[str, Path]
    sdr: dict[str, float]  # scored stem -> median over frames, of the written file
    separation_seconds: float
    total_seconds: float
    weights: dict


def run_demo(model, out_dir: Path, clip: Path, started: float) -> DemoResult:
    """Separate ``clip`` with ``model``, write every stem under ``out_dir/<model folder>/<track>/`` (overwriting
    the demo's own earlier outputs), read them back and score them; ``started`` is when the demo began (model
    loading included)."""
    track = load_track(open_track(clip))
    begin = time.perf_counter()
    estimates = separate(model, torch.from_numpy(track.mixture), track.sample_rate)
    separation_seconds = time.perf_counter() - begin
    folder = Path(out_dir) / model_folder(model) / track.name
    outputs = {stem: folder / f"{stem}.wav" for stem in estimates}
    written = {}
    for stem, audio in estimates.items():
        write_audio(outputs[stem], audio.numpy(), track.sample_rate)
        written[stem] = read_audio(outputs[stem])[0]
    medians = track_summary(score(track, written, sdr_only=True))
    return DemoResult(
        clip=clip,
        track=track,
        outputs=outputs,
        sdr={stem: values["SDR"] for stem, values in medians.items()},
        separation_seconds=separation_seconds,
        total_seconds=time.perf_counter() - started,
        weights=model.provenance.as_dict() if model.provenance is not None else {},
    )
