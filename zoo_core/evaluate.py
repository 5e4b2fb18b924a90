"""Scoring separations the MUSDB18 way: museval v4 metrics on 1-s frames, SiSEC aggregation, plots.

A track comes from a MUSDB18 ``.stem.mp4`` (the mixture is stream 0, the released mixture, not the sum of the
stems) or a track folder (MUSDB18-HQ: ``mixture.wav`` and the four sources), see `zoo_core.musdb`. Every stem the
separation yields that MUSDB18 defines is scored: for a vocal model ``vocals`` and ``accompaniment`` (drums +
bass + other, musdb's definition), for a four-stem model each source; they are evaluated together, as museval's
multi-source scenario. With ``sdr_only`` the SDR comes from `zoo_core.metrics.sdr` (identical to museval's,
without its 512-tap filters) and museval is not imported.

Aggregation (SiSEC 2018): per track the median over frames, then the median over tracks; NaN frames (silent
reference or estimate) are ignored and, as in museval's JSON, a perfect frame's +inf counts as NaN.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .errors import ZooError, first_line
from .files import atomic_path, write_text_atomically
from .metrics import sdr
from .musdb import LAYOUTS, MusdbTrack, combine, find_tracks, open_track
from .stems import MUSDB_MEANING

METRICS = ("SDR", "SIR", "ISR", "SAR")
FRAME_SECONDS = 1.0
AGGREGATION = "median over 1-s frames per track, then median over tracks (SiSEC 2018); NaN frames ignored"
MIXTURE_NOTE = "mixture: stream 0 of a .stem.mp4 (the released mixture), mixture.wav of a track folder (else the sum of the sources)"

Scores = dict[str, dict[str, list[float]]]  # target -> metric -> per-frame values


def scored_stems(stems: Sequence[str]) -> list[str]:
    """The stems of a separation that MUSDB18 has references for, in the separation's order."""
    return [stem for stem in stems if stem in MUSDB_MEANING]


@dataclass
class Track:
    """A track in memory for scoring: the mixture and MUSDB's four sources, ``[channels, samples]`` float32."""

    name: str
    subset: str
    sample_rate: int
    mixture: np.ndarray
    sources: dict[str, np.ndarray]

    def reference(self, stem: str) -> np.ndarray:
        return combine(self.sources, stem)


def load_track(track: MusdbTrack) -> Track:
    mixture, sources = track.load()
    return Track(track.name, track.subset, track.sample_rate, mixture, sources)


def find_musdb_tracks(root: Path, subset: str = "test") -> list[MusdbTrack]:
    """Tracks of ``root/subset``; a folder without any is a one-line error (a track that cannot be used too)."""
    layout = f"expected {root}/{subset}/ to hold {LAYOUTS}"
    folder = root / subset
    if not root.is_dir():
        raise ZooError(f"{root}: not a folder; {layout}")
    if not folder.is_dir():
        raise ZooError(f"{root}: no {subset}/ folder; {layout}")
    tracks, skipped = find_tracks(folder, subset)
    if skipped:
        raise ZooError(f"{folder}/{skipped[0]}")
    if not tracks:
        raise ZooError(f"{folder}: no tracks found; {layout}")
    return tracks


def check_track_source(path: Path) -> MusdbTrack:
    """A single track given on the command line: a stem file or a track folder."""
    return open_track(path)


def import_museval():
    """museval imports stempeg, which refuses to load without the ffmpeg programs."""
    try:
        import museval
    except RuntimeError as exc:
        raise ZooError(
            f"museval cannot be imported ({first_line(exc)}): install ffmpeg (with ffprobe), "
            "or use --sdr-only"
        ) from None
    return museval


def score(track: Track, estimates: dict[str, np.ndarray], sdr_only: bool = False) -> Scores:
    """Per-frame museval v4 metrics of every scored stem of ``estimates``, evaluated together, 1-s frames."""
    targets = scored_stems(list(estimates))
    if not targets:
        raise ZooError(f"{track.name}: none of the stems {', '.join(estimates)} has a MUSDB18 reference", exit_code=1)
    references = [track.reference(t).T.astype(np.float64) for t in targets]
    estimated = [np.asarray(estimates[t]).T.astype(np.float64) for t in targets]
    window = int(FRAME_SECONDS * track.sample_rate)
    try:
        if sdr_only:
            values = {"SDR": sdr(references, estimated, window, window)}
        else:
            museval = import_museval()
            results = museval.evaluate(references, estimated, win=window, hop=window)
            values = dict(zip(("SDR", "ISR", "SIR", "SAR"), results))
    except ValueError as exc:  # a silent reference (a track without vocals) or a silent estimate
        raise ZooError(f"{track.name}: cannot be scored ({exc})", exit_code=1) from None
    return {target: {m: values[m][i].tolist() for m in METRICS if m in values} for i, target in enumerate(targets)}


def _json_value(value: float) -> Optional[float]:
    """museval's JSON quantisation: 5 decimals, +-inf and NaN written as NaN."""
    return round(value, 5) if math.isfinite(value) else float("nan")


def write_scores_json(path: Path, track_name_: str, scores: Scores, sdr_only: bool) -> None:
    """museval's per-track JSON (``{"targets": [{"name", "frames": [{"time", "duration", "metrics"}]}]}``);
    with full metrics it is museval's own `TrackStore` output, validated against museval's schema."""
    if sdr_only:
        document = {
            "targets": [
                {
                    "name": target,
                    "frames": [
                        {"time": i * FRAME_SECONDS, "duration": FRAME_SECONDS, "metrics": {"SDR": _json_value(v)}}
                        for i, v in enumerate(scores[target]["SDR"])
                    ],
                }
                for target in scores
            ],
            "evaluator": "svs-zoo fast SDR (museval v4 definition); ISR, SIR, SAR not computed",
        }
        text = json.dumps(document, indent=2, allow_nan=True)
    else:
        store = import_museval().TrackStore(win=FRAME_SECONDS, hop=FRAME_SECONDS, track_name=track_name_)
        for target, values in scores.items():
            store.add_target(target_name=target, values=values)
        store.validate()
        text = store.json
    write_text_atomically(path, text)


def _frame_values(values: list[float]) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(array), array, np.nan)


def track_summary(scores: Scores) -> dict[str, dict[str, float]]:
    """Median over frames, per target and metric (NaN when every frame is NaN)."""
    return {
        target: {metric: _nanmedian(_frame_values(values)) for metric, values in metrics.items()}
        for target, metrics in scores.items()
    }


def aggregate(summaries: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Median over tracks of the per-track frame medians."""
    result: dict[str, dict[str, float]] = {}
    targets = [t for t in (summaries[0] if summaries else {}) if all(t in s for s in summaries)]
    for target in targets:
        metrics = [m for m in METRICS if summaries and all(m in s[target] for s in summaries)]
        result[target] = {m: _nanmedian(np.array([s[target][m] for s in summaries])) for m in metrics}
    return result


def _nanmedian(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(np.median(finite)) if finite.size else float("nan")


def plot_track(path: Path, track: Track, estimates: dict[str, np.ndarray], scores: Scores, model_name: str) -> None:
    """A PNG: mixture, true and estimated first-stem spectrograms (vocals for a vocal model), then the per-frame
    SDR of every scored stem."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rate = track.sample_rate
    shown = next(iter(scores))
    panels = [
        ("mixture", track.mixture),
        (f"true {shown}", track.reference(shown)),
        (f"estimated {shown} ({model_name})", estimates[shown]),
    ]
    figure, axes = plt.subplots(4, 1, figsize=(12, 11), sharex=True, constrained_layout=True)
    duration = track.mixture.shape[1] / rate
    loudest = float(_spectrogram_db(track.mixture).max())  # one scale for all panels: levels compare
    for axis, (title, audio) in zip(axes, panels):
        decibels = _spectrogram_db(audio) - loudest
        image = axis.imshow(
            decibels,
            origin="lower",
            aspect="auto",
            cmap="magma",
            extent=(0, duration, 0, rate / 2000),
            vmin=-80,
            vmax=0,
            interpolation="nearest",
        )
        axis.set_ylabel("kHz")
        axis.set_title(title)
    figure.colorbar(image, ax=axes[:3], label="dB re. the loudest mixture bin", shrink=0.8)
    sdr_axis = axes[3]
    for index, target in enumerate(scores):
        style = f"C{index}"
        values = _frame_values(scores[target]["SDR"])
        times = np.arange(values.size + 1) * FRAME_SECONDS
        sdr_axis.stairs(values, times, baseline=None, color=style, label=f"{target} (median {_nanmedian(values):.2f} dB)")
    sdr_axis.axhline(0, color="grey", linewidth=0.5)
    sdr_axis.set_ylabel("SDR (dB)")
    sdr_axis.set_xlabel("time (s)")
    sdr_axis.set_title("museval v4 SDR per 1-s frame (gaps: silent frames, NaN)")
    sdr_axis.legend(loc="lower right")
    sdr_axis.set_xlim(0, duration)
    figure.suptitle(f"{track.name}")
    try:
        with atomic_path(path) as temporary:
            figure.savefig(temporary, dpi=100, format="png")
    finally:
        plt.close(figure)


def _spectrogram_db(audio: np.ndarray, n_fft: int = 2048, hop: int = 512) -> np.ndarray:
    """Log-magnitude STFT of the channel mean, ``[bins, frames]`` in dB."""
    import torch

    mono = torch.from_numpy(np.ascontiguousarray(audio.mean(axis=0), dtype=np.float32))
    if mono.shape[0] < n_fft:
        mono = torch.nn.functional.pad(mono, (0, n_fft - mono.shape[0]))
    magnitude = torch.stft(mono, n_fft, hop, window=torch.hann_window(n_fft), return_complex=True).abs()
    return (20 * torch.log10(magnitude.clamp_min(1e-8))).numpy()


@dataclass
class TrackResult:
    name: str
    subset: str
    scores: Scores
    json_path: Optional[Path]
    plot_path: Optional[Path]

    @property
    def summary(self) -> dict[str, dict[str, float]]:
        return track_summary(self.scores)

    def as_dict(self) -> dict:
        return {
            "track": self.name,
            "subset": self.subset,
            "median_over_frames": self.summary,
            "json": None if self.json_path is None else str(self.json_path),
            "plot": None if self.plot_path is None else str(self.plot_path),
        }


def evaluate_track(
    model,
    source: MusdbTrack,
    out_dir: Optional[Path],
    *,
    model_name: str,
    sdr_only: bool = False,
    plot: bool = False,
    separation: Optional[dict] = None,
) -> TrackResult:
    """Separate one track with ``model``, score every stem MUSDB18 defines, and write museval's JSON (and the
    plot) under ``out_dir``: ``<out>/<subset>/<track>.json`` as museval lays it out (no subset folder for a
    single track)."""
    import torch

    from .separation import separate

    track = load_track(source)
    estimates = separate(model, torch.from_numpy(track.mixture), track.sample_rate, **(separation or {}))
    estimates = {stem: value.numpy() for stem, value in estimates.items()}
    scores = score(track, estimates, sdr_only)
    json_path = plot_path = None
    if out_dir is not None:
        folder = out_dir / track.subset if track.subset else out_dir
        json_path = folder / f"{track.name}.json"
        write_scores_json(json_path, track.name, scores, sdr_only)
        if plot:
            plot_path = folder / f"{track.name}.png"
            plot_track(plot_path, track, estimates, scores, model_name)
    return TrackResult(track.name, track.subset, scores, json_path, plot_path)
