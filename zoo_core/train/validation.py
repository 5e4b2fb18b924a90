"""Validation SDR: the model separates each validation track (svs-zoo's overlap-add `separate`, the same path
`zoo separate` takes) and is scored with the exact museval-v4 SDR of `zoo_core.metrics`.

Per track: the median over 1-s frames (NaN frames, i.e. silent reference or estimate, ignored; a perfect
frame's +inf counts as NaN, as museval's JSON stores it); over tracks: the median (SiSEC 2018). The mixture is
the sum of the stems. ``--valid-seconds`` crops each track to its middle N seconds to keep validation cheap;
the card states which was used.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch

from ..metrics import sdr
from ..separation import separate
from ..musdb import MusdbTrack as Track, combine

AGGREGATION = (
    "median over tracks of the median over 1-s frames (museval v4 SDR, sum-of-stems mixture; "
    "the mean over stems for a multi-stem model)"
)


def track_sdr(model, track: Track, seconds: Optional[float]) -> float:
    """Median framewise SDR (dB) of ``model``'s estimates for one track, averaged over the model's stems (NaN
    stems, a silent reference or estimate, left out); NaN if undefined for every stem."""
    _, sources = track.load(seconds)
    mixture = sum(sources.values())  # training's mixture: the targets are exactly parts of it
    references = {stem: combine(sources, stem) for stem in model.stems}
    estimates = separate(model, torch.from_numpy(mixture), model.sample_rate)
    medians = []
    for stem in model.stems:
        try:
            frames = sdr(references[stem].T[None], estimates[stem].numpy().T[None])[0]
        except ValueError:  # a silent reference or estimate over the whole track
            continue
        frames = frames[np.isfinite(frames)]
        if frames.size:
            medians.append(float(np.median(frames)))
    return float(np.mean(medians)) if medians else math.nan


def median_sdr(per_track: dict[str, float]) -> float:
    values = [value for value in per_track.values() if not math.isnan(value)]
    return float(np.median(values)) if values else math.nan
