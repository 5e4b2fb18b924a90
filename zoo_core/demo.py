"""`zoo demo`: the zoo's main job on real music, in one command.

The MUSDB18 clip "The Easton Ellises - Falcon 69" (a 6-s preview, CC BY-NC-SA 3.0) ships inside the PyPI
package ``stempeg``. It is found without importing stempeg (its import insists on the ffmpeg programs) and
decoded with PyAV. The default model separates the mixture (stream 0) with the default overlap-add, the stems
are written, and vocal and accompaniment SDR against the true stems are measured with the fast exact
museval-v4 SDR (median over 1-s frames).
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .audio import write_audio
from .errors import ZooError
from .evaluate import TARGETS, Track, TrackSource, load_track, score, track_summary
from .separate import STEMS, model_folder, separate

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
    sdr: dict[str, float]  # target -> median over frames
    separation_seconds: float
    total_seconds: float
    weights: dict


def run_demo(model, model_name: str, out_dir: Path, clip: Path, started: float) -> DemoResult:
    """Separate ``clip`` with ``model``, write the stems under ``out_dir/<model>/<track>/`` (overwriting the
    demo's own earlier outputs) and score them; ``started`` is when the demo began (model loading included)."""
    track = load_track(TrackSource(clip))
    begin = time.perf_counter()
    estimates = separate(model, torch.from_numpy(track.mixture), track.sample_rate)
    separation_seconds = time.perf_counter() - begin
    estimates = {stem: value.numpy() for stem, value in estimates.items()}
    folder = Path(out_dir) / model_folder(model_name) / track.name
    outputs = {stem: folder / f"{stem}.wav" for stem in STEMS}
    for stem in STEMS:
        write_audio(outputs[stem], estimates[stem], track.sample_rate)
    medians = track_summary(score(track, estimates, sdr_only=True))
    return DemoResult(
        clip=clip,
        track=track,
        outputs=outputs,
        sdr={target: medians[target]["SDR"] for target in TARGETS},
        separation_seconds=separation_seconds,
        total_seconds=time.perf_counter() - started,
        weights=dict(getattr(model, "weights_info", {})),
    )
