"""Training data: the paper's random cross-track mixes over MUSDB18-style tracks (`zoo_core.musdb`).

``--musdb ROOT`` holds tracks in ``ROOT/train`` when that folder exists, else in ``ROOT`` itself, in any layout
`zoo_core.musdb` reads. Mixtures are always the sum of the four sources (musdb's "linear mixture"), in training
and in validation, so that the targets are exactly parts of the input.

A track that cannot be used (a missing or unreadable stem, another sample rate, too short for one training
chunk) is skipped with a reason; `TrackSet.skipped` carries them to the run's summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..errors import ZooError
from ..musdb import LAYOUTS, MusdbTrack, combine, find_tracks as find_musdb_tracks
from ..stems import MUSDB_MEANING, MUSDB_SOURCES

# musdb's standard validation split (its mus.yaml): 14 of the 100 training tracks
MUSDB_VALIDATION = (
    "Actions - One Minute Smile",
    "Clara Berry And Wooldog - Waltz For My Victims",
    "Johnny Lokke - Promises & Lies",
    "Patrick Talbot - A Reason To Leave",
    "Triviul - Angelsaint",
    "Alexander Ross - Goodbye Bolero",
    "Fergessen - Nos Palpitants",
    "Leaf - Summerghost",
    "Skelpolu - Human Mistakes",
    "Young Griffo - Pennies",
    "ANiMAL - Rockshow",
    "James May - On The Line",
    "Meaxic - Take A Step",
    "Traffic Experiment - Sirens",
)
GAIN_RANGE = (0.25, 1.25)  # gain augmentation: a uniform factor per stem (the range open-unmix uses)
Track = MusdbTrack


@dataclass
class TrackSet:
    """The split of a data root: training tracks, validation tracks, and what was skipped and why."""

    train: list[Track]
    valid: list[Track]
    skipped: list[str]
    layout: str

    def prepare(self) -> None:
        for track in self.train + self.valid:
            for stem in track.stems.values():
                stem.prepare()


def find_tracks(root: Path, sample_rate: int) -> tuple[list[Track], list[str], str]:
    """Every usable track under ``root`` (see the module docstring), the skipped ones, and the layout found."""
    if not root.is_dir():
        raise ZooError(f"{root}: not a folder; expected ROOT/train/ or ROOT/ holding {LAYOUTS}")
    folder = root / "train" if (root / "train").is_dir() else root
    tracks, skipped = find_musdb_tracks(folder)
    usable = []
    for track in tracks:
        if track.sample_rate != sample_rate:
            skipped.append(f"{track.name}: sample rate {track.sample_rate} Hz; the model needs {sample_rate} Hz")
        else:
            usable.append(track)
    if not usable:
        why = f" ({len(skipped)} skipped: {skipped[0]}{', ...' if len(skipped) > 1 else ''})" if skipped else ""
        raise ZooError(f"{folder}: no usable tracks found{why}; expected {LAYOUTS}")
    kinds = {"MUSDB18 .stem.mp4" if track.path is not None and track.path.is_file() else "per-stem folders" for track in usable}
    return usable, skipped, " and ".join(sorted(kinds))


def split_tracks(root: Path, sample_rate: int, chunk: int, valid_names: tuple[str, ...] = ()) -> TrackSet:
    """Training and validation tracks; ``valid_names`` empty means MUSDB's standard 14 validation tracks."""
    tracks, skipped, layout = find_tracks(root, sample_rate)
    by_name = {track.name: track for track in tracks}
    if valid_names:
        unknown = [name for name in valid_names if name not in by_name]
        if unknown:
            raise ZooError(f"validation track {unknown[0]!r} is not among the {len(tracks)} usable tracks of {root}")
        chosen = list(valid_names)
    else:
        chosen = [name for name in MUSDB_VALIDATION if name in by_name]
        if not chosen:
            raise ZooError(
                f"{root}: none of MUSDB's 14 standard validation tracks is there; name validation tracks with "
                "--valid-track"
            )
    train = []
    for track in tracks:
        if track.name in chosen:
            continue
        if track.frames < chunk:
            skipped.append(f"{track.name}: shorter than one training chunk ({track.frames} < {chunk} samples)")
        else:
            train.append(track)
    if not train:
        raise ZooError(f"{root}: no training tracks left (validation: {len(chosen)}, skipped: {len(skipped)})")
    return TrackSet(train, [by_name[name] for name in chosen], skipped, layout)


class RandomMixes(Dataset):
    """The paper's augmentation: sample ``index`` takes each source from an independently drawn track at an
    independent random offset and sums them into the mixture; optionally each source gets a random gain and a
    random left/right swap. A sample depends only on (seed, index), never on worker or process. Returns the
    mixture ``[2, N]`` and the model's stems ``[stems, 2, N]``."""

    def __init__(
        self, tracks: list[Track], stems: Sequence[str], chunk: int, seed: int, gain: bool = False, swap: bool = False
    ):
        for name in stems:
            if name not in MUSDB_MEANING:
                raise ZooError(f"cannot train stem {name!r}: it has no MUSDB18 definition (known: {', '.join(MUSDB_MEANING)})")
        self.tracks = tracks
        self.target_stems = list(stems)
        self.chunk = chunk
        self.seed = seed
        self.gain = gain
        self.swap = swap

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, index])
        stems = {}
        for name in MUSDB_SOURCES:
            track = self.tracks[rng.integers(len(self.tracks))]
            audio = track.read(name, int(rng.integers(track.frames - self.chunk + 1)), self.chunk)
            if self.gain:
                audio = audio * np.float32(rng.uniform(*GAIN_RANGE))
            if self.swap and rng.random() < 0.5:
                audio = audio[::-1]
            stems[name] = np.ascontiguousarray(audio, dtype=np.float32)
        mixture = sum(stems.values())
        targets = np.stack([combine(stems, name) for name in self.target_stems])
        return torch.from_numpy(mixture), torch.from_numpy(targets)


class StepSampler(Sampler[int]):
    """Sample indices from ``start_step`` on, sharded over ranks like a DistributedSampler: step ``s`` of rank
    ``r`` takes indices ``(s * world + r) * batch + j``, so ranks never share a sample and a resumed run
    continues exactly where the saved step left off."""

    def __init__(self, start_step: int, batch_size: int, rank: int = 0, world_size: int = 1):
        self.start_step = start_step
        self.batch_size = batch_size
        self.rank = rank
        self.world_size = world_size

    def __iter__(self) -> Iterator[int]:
        step = self.start_step
        while True:
            first = (step * self.world_size + self.rank) * self.batch_size
            yield from range(first, first + self.batch_size)
            step += 1
