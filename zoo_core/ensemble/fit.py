"""Fitting an ensemble on tracks with true stems: per stem, a greedy choice of members and their weights that
maximise SDR, and the gain over the best member with a bootstrap confidence interval.

The objective of a stem is the mean over tracks of the track's SDR (museval v4 on 1-s frames, the median over
frames, as `zoo eval` reports per track; `zoo_core.metrics.sdr`). The fit starts from the best member alone
and adds, one at a time, the member and mixing fraction ``a`` (a grid of 0.05 steps; the ensemble becomes
``(1 - a) * ensemble + a * member``) that raise the objective most, until nothing raises it (greedy forward
selection of an avg-wave ensemble). Starting from the best member, the fit is never worse than it on the
tracks it is fitted on.

The gain is the objective's difference from the best member alone, with a 95% percentile bootstrap interval
over tracks (10,000 resamples, seeded); with one track, over its 1-s frames (the difference of the medians).

Every member's estimates of every track are kept on disk in a temporary folder (``.npy``, read back memory-
mapped), so memory holds one track at a time, whatever the number of tracks.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from ..metrics import sdr
from ..stems import MUSDB_MEANING

GRID = np.round(np.arange(0.05, 1.0, 0.05), 2)
FRAME_SECONDS = 1.0
RESAMPLES = 10_000
MIN_GAIN = 1e-6  # dB: a step that does not raise the objective by this much ends the search


def frame_sdr(reference: np.ndarray, estimate: np.ndarray, rate: int) -> np.ndarray:
    """museval v4 SDR per 1-s frame, NaN for the frames museval leaves out; ``[channels, samples]`` inputs."""
    window = int(FRAME_SECONDS * rate)
    values = sdr([reference.T.astype(np.float64)], [estimate.T.astype(np.float64)], window, window)[0]
    return np.where(np.isfinite(values), values, np.nan)


def track_value(frames: np.ndarray) -> float:
    finite = frames[~np.isnan(frames)]
    return float(np.median(finite)) if finite.size else float("nan")


@dataclass
class StemFit:
    stem: str
    weights: dict[str, float]  # member -> weight (sum 1) of the chosen members
    value: float  # the objective, dB
    best_member: str
    best_value: float
    gain: float
    interval: tuple[float, float]
    interval_over: str  # "tracks" or "frames"
    singles: dict[str, float] = field(default_factory=dict)  # every member alone


class Estimates:
    """The members' estimates and the references of every track, on disk."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.tracks: list[str] = []
        self.rates: list[int] = []

    def path(self, track: int, who: str, stem: str) -> Path:
        return self.folder / f"{track}-{who.replace('/', '_')}-{stem}.npy"

    def put(self, track: int, who: str, stem: str, audio: np.ndarray) -> None:
        np.save(self.path(track, who, stem), np.ascontiguousarray(audio, np.float32))

    def get(self, track: int, who: str, stem: str) -> np.ndarray:
        return np.load(self.path(track, who, stem), mmap_mode="r")


def fit_stem(stem: str, members: Sequence[str], store: Estimates, reference: str = "reference") -> StemFit:
    tracks = range(len(store.tracks))

    def frames_of(mixes: list[np.ndarray]) -> list[np.ndarray]:
        return [frame_sdr(store.get(t, reference, stem), mixes[t], store.rates[t]) for t in tracks]

    def objective(frames: list[np.ndarray]) -> float:
        return float(np.nanmean([track_value(f) for f in frames]))

    single_frames = {m: frames_of([np.asarray(store.get(t, m, stem)) for t in tracks]) for m in members}
    singles = {m: objective(f) for m, f in single_frames.items()}
    best = max(members, key=lambda m: singles[m])
    weights = {best: 1.0}
    current = [np.asarray(store.get(t, best, stem), np.float64) for t in tracks]
    value, frames = singles[best], single_frames[best]
    while True:
        trial = None
        for member in members:
            if member in weights:
                continue
            own = [np.asarray(store.get(t, member, stem), np.float64) for t in tracks]
            for a in GRID:
                mixes = [(1 - a) * c + a * o for c, o in zip(current, own)]
                candidate_frames = frames_of(mixes)
                candidate = objective(candidate_frames)
                if candidate > value + MIN_GAIN and (trial is None or candidate > trial[0]):
                    trial = (candidate, member, float(a), mixes, candidate_frames)
        if trial is None:
            break
        value, member, a, current, frames = trial
        weights = {m: w * (1 - a) for m, w in weights.items()}
        weights[member] = a
    interval, over = bootstrap(frames, single_frames[best])
    return StemFit(stem, weights, value, best, singles[best], value - singles[best], interval, over, singles)


def bootstrap(ensemble: list[np.ndarray], best: list[np.ndarray], seed: int = 0) -> tuple[tuple[float, float], str]:
    """95% percentile interval of the gain: over tracks, or over one track's frames."""
    rng = np.random.default_rng(seed)
    if len(ensemble) > 1:
        differences = np.array([track_value(e) - track_value(b) for e, b in zip(ensemble, best)])
        picks = rng.integers(0, len(differences), (RESAMPLES, len(differences)))
        gains = np.nanmean(differences[picks], axis=1)
        over = "tracks"
    else:
        e, b = ensemble[0], best[0]
        keep = ~(np.isnan(e) | np.isnan(b))
        e, b = e[keep], b[keep]
        if not e.size:
            return (float("nan"), float("nan")), "frames"
        picks = rng.integers(0, e.size, (RESAMPLES, e.size))
        gains = np.median(e[picks], axis=1) - np.median(b[picks], axis=1)
        over = "frames"
    low, high = np.percentile(gains, [2.5, 97.5])
    return (float(low), float(high)), over


def separate_into(store: Estimates, index: int, track, models: dict[str, object], stems: Sequence[str],
                  mappings: dict[str, dict[str, str]], options) -> None:
    """One track: its references and every member's estimates of ``stems``, on disk."""
    from ..separation import separate_blocks

    mixture = track.mixture  # [channels, samples]
    for stem in stems:
        store.put(index, "reference", stem, track.reference(stem))
    for label, model in models.items():
        pieces = list(separate_blocks(model, [np.ascontiguousarray(mixture.T)], track.sample_rate, mixture.shape[0],
                                      options))
        for stem in stems:
            own = mappings[label][stem]
            store.put(index, label, stem, np.concatenate([p[own] for p in pieces]).T)


def scored_common_stems(mappings: Sequence[dict[str, str]]) -> list[str]:
    common = [s for s in mappings[0] if all(s in m for m in mappings[1:])]
    return [s for s in common if s in MUSDB_MEANING]


def fit(models: dict[str, object], tracks: Sequence, options, progress: Optional[Callable[[str], None]] = None,
        ) -> list[StemFit]:
    """Separate ``tracks`` (`zoo_core.musdb.MusdbTrack`) with every model, then fit every common scored stem."""
    from ..errors import ZooError
    from ..evaluate import load_track
    from .engine import stem_mapping

    mappings = {label: stem_mapping(model.stems) for label, model in models.items()}
    stems = scored_common_stems(list(mappings.values()))
    if not stems:
        raise ZooError("the members have no stem in common that MUSDB18 has a reference for")
    with tempfile.TemporaryDirectory(prefix="zoo-ensemble-fit-") as folder:
        store = Estimates(Path(folder))
        for index, source in enumerate(tracks):
            track = load_track(source)
            if progress is not None:
                progress(f"separating {track.name} with {len(models)} members")
            separate_into(store, index, track, models, stems, mappings, options)
            store.tracks.append(track.name)
            store.rates.append(track.sample_rate)
        if progress is not None:
            progress(f"fitting {', '.join(stems)} on {len(store.tracks)} track(s)")
        return [fit_stem(stem, list(models), store) for stem in stems]
