"""Training data: finding tracks, reading windows of their stems, and the paper's random cross-track mixes.

Layouts under ``--musdb ROOT`` (``ROOT/train`` when it exists, else ``ROOT`` itself):

- MUSDB18: ``<track>.stem.mp4`` (streams mixture, drums, bass, other, vocals);
- MUSDB18-HQ, or any folder of tracks: ``<track>/{drums,bass,other,vocals}.<ext>`` (WAV, FLAC, MP3, ...).

Mixtures are always the sum of the four stems (musdb's "linear mixture"), in training and in validation, so
that the target is exactly part of the input. WAV and FLAC stems are read window by window; compressed ones
are decoded once into ``$ZOO_HOME/decoded`` and memory-mapped, so a whole dataset never sits in memory.

A track that cannot be used (a missing or unreadable stem, another sample rate, too short for one training
chunk) is skipped with a reason; `TrackSet.skipped` carries them to the run's summary.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..audio import AUDIO_EXTENSIONS, MUSDB_STEMS, open_audio
from ..errors import ZooError

SOURCES = ("drums", "bass", "other", "vocals")
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
SEEKABLE = (".wav", ".flac")  # soundfile reads a window of these without decoding the rest
GAIN_RANGE = (0.25, 1.25)  # gain augmentation: a uniform factor per stem (the range open-unmix uses)
STEM_FILE = ".stem.mp4"
LAYOUTS = (
    "ROOT/train/<track>.stem.mp4 (MUSDB18), ROOT/train/<track>/{drums,bass,other,vocals}.wav (MUSDB18-HQ) "
    "or ROOT/<track>/{drums,bass,other,vocals}.<ext>"
)


def decoded_dir() -> Path:
    from ..weights.cache import zoo_home

    return zoo_home() / "decoded"


@dataclass
class StemFile:
    """One stem of one track: a file (and stream, for a .stem.mp4) with its length and rate."""

    path: Path
    stream: int
    frames: int
    channels: int
    sample_rate: int
    _decoded: Optional[np.ndarray] = field(default=None, repr=False, compare=False)

    @classmethod
    def open(cls, path: Path, stream: int = 0) -> "StemFile":
        reader = open_audio(path, stream)
        return cls(path, stream, reader.frames, reader.channels, reader.sample_rate)

    def read(self, start: int, count: int) -> np.ndarray:
        """``[2, count]`` float32 from sample ``start`` (mono is duplicated; past the end reads zeros)."""
        if self.path.suffix.lower() in SEEKABLE:
            import soundfile

            audio = soundfile.read(str(self.path), frames=count, start=start, dtype="float32", always_2d=True)[0].T
        else:
            audio = np.asarray(self._memory_map()[:, start : start + count])
        if audio.shape[1] < count:
            audio = np.pad(audio, [(0, 0), (0, count - audio.shape[1])])
        return np.ascontiguousarray(np.broadcast_to(audio, (2, count)) if audio.shape[0] == 1 else audio)

    def prepare(self) -> None:
        """Decode a compressed stem into the cache now rather than in a DataLoader worker."""
        if self.path.suffix.lower() not in SEEKABLE:
            decode_once(self.path, self.stream)

    def _memory_map(self) -> np.ndarray:
        if self._decoded is None:
            self._decoded = np.load(decode_once(self.path, self.stream), mmap_mode="r")
        return self._decoded

    def __getstate__(self) -> dict:  # worker processes map the file themselves; never pickle the samples
        return {**self.__dict__, "_decoded": None}


def decode_once(path: Path, stream: int) -> Path:
    """The decoded ``[channels, samples]`` float32 .npy of a compressed stem, decoding it on first use."""
    stat = path.stat()
    key = hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{stream}".encode()).hexdigest()[:20]
    target = decoded_dir() / f"{key}.npy"
    if target.is_file():
        return target
    audio = open_audio(path, stream).read()
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            np.save(handle, audio)
        os.replace(temporary, target)
    except OSError as exc:
        raise ZooError(f"cannot write the decoded audio cache {target}: {exc.strerror or exc}", exit_code=1) from None
    finally:
        temporary.unlink(missing_ok=True)
    return target


@dataclass
class Track:
    name: str
    stems: dict[str, StemFile]

    @property
    def frames(self) -> int:
        return min(stem.frames for stem in self.stems.values())

    def read(self, stem: str, start: int, count: int) -> np.ndarray:
        return self.stems[stem].read(start, count)

    def mixture_and_target(self, target: str, seconds: Optional[float] = None) -> tuple[np.ndarray, np.ndarray]:
        """The whole track (or its middle ``seconds``) as (sum of the stems, target), ``[2, N]`` float32 each."""
        rate = self.stems[target].sample_rate
        count = self.frames if seconds is None else min(self.frames, max(1, round(seconds * rate)))
        start = (self.frames - count) // 2
        stems = {name: self.read(name, start, count) for name in SOURCES}
        return sum(stems.values()), stems[target]


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


def _stem_tracks(path: Path) -> Track:
    """A MUSDB18 .stem.mp4: stream i holds MUSDB_STEMS[i]."""
    return Track(path.name[: -len(STEM_FILE)], {name: StemFile.open(path, MUSDB_STEMS.index(name)) for name in SOURCES})


def _folder_track(folder: Path) -> Track:
    stems = {}
    for name in SOURCES:
        candidates = sorted(p for p in folder.iterdir() if p.stem == name and p.suffix.lower() in AUDIO_EXTENSIONS)
        if not candidates:
            raise ZooError(f"missing stem {name!r} (expected {name}.wav or another audio file named {name})")
        stems[name] = StemFile.open(candidates[0])
    return Track(folder.name, stems)


def _check_usable(track: Track, sample_rate: int) -> None:
    rates = {stem.sample_rate for stem in track.stems.values()}
    if rates != {sample_rate}:
        raise ZooError(f"sample rate {', '.join(map(str, sorted(rates)))} Hz; the model needs {sample_rate} Hz")
    if track.frames == 0:
        raise ZooError("no audio samples")


def find_tracks(root: Path, sample_rate: int) -> tuple[list[Track], list[str], str]:
    """Every usable track under ``root`` (see the module docstring), the skipped ones, and the layout found."""
    if not root.is_dir():
        raise ZooError(f"{root}: not a folder; expected {LAYOUTS}")
    folder = root / "train" if (root / "train").is_dir() else root
    tracks: list[Track] = []
    skipped: list[str] = []
    kinds = set()
    for entry in sorted(folder.iterdir()):
        is_stem_file = entry.is_file() and entry.name.lower().endswith(STEM_FILE)
        if not (is_stem_file or entry.is_dir()):
            continue
        try:
            track = _stem_tracks(entry) if is_stem_file else _folder_track(entry)
            _check_usable(track, sample_rate)
        except ZooError as exc:
            skipped.append(f"{entry.name}: {str(exc).removeprefix(f'{entry}: ')}")
            continue
        kinds.add("MUSDB18 .stem.mp4" if is_stem_file else "per-stem folders")
        tracks.append(track)
    if not tracks:
        why = f" ({len(skipped)} skipped: {skipped[0]}{', ...' if len(skipped) > 1 else ''})" if skipped else ""
        raise ZooError(f"{folder}: no usable tracks found{why}; expected {LAYOUTS}")
    return tracks, skipped, " and ".join(sorted(kinds))


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
    """The paper's augmentation: sample ``index`` takes each stem from an independently drawn track at an
    independent random offset and sums them into the mixture; optionally each stem gets a random gain and a
    random left/right swap. A sample depends only on (seed, index), never on worker or process."""

    def __init__(self, tracks: list[Track], target: str, chunk: int, seed: int, gain: bool = False, swap: bool = False):
        self.tracks = tracks
        self.target = target
        self.chunk = chunk
        self.seed = seed
        self.gain = gain
        self.swap = swap

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, index])
        stems = {}
        for name in SOURCES:
            track = self.tracks[rng.integers(len(self.tracks))]
            audio = track.read(name, int(rng.integers(track.frames - self.chunk + 1)), self.chunk)
            if self.gain:
                audio = audio * np.float32(rng.uniform(*GAIN_RANGE))
            if self.swap and rng.random() < 0.5:
                audio = audio[::-1]
            stems[name] = np.ascontiguousarray(audio, dtype=np.float32)
        mixture = sum(stems.values())
        return torch.from_numpy(mixture), torch.from_numpy(stems[self.target])


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
