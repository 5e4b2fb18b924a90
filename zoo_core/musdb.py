"""MUSDB18-style tracks: finding them and reading their stems, for `zoo eval` and `zoo train` alike.

A track is either

- a MUSDB18 ``<track>.stem.mp4``: streams mixture, drums, bass, other, vocals (the mixture is the released one);
- a folder ``<track>/`` holding ``drums``, ``bass``, ``other`` and ``vocals`` audio files (any extension the zoo
  reads) and optionally ``mixture`` (MUSDB18-HQ has ``mixture.wav``); without one, the mixture is the sum of
  the four sources.

WAV and FLAC stems are read window by window; compressed ones are decoded once into ``$ZOO_HOME/decoded`` and
memory-mapped, so a whole dataset never sits in memory. A stem name that is not a MUSDB source (e.g.
``accompaniment``) is the sum of the sources it stands for (`zoo_core.stems.MUSDB_MEANING`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .audio import AUDIO_EXTENSIONS, open_audio, track_name
from .errors import ZooError
from .files import atomic_path
from .stems import MUSDB_MEANING, MUSDB_SOURCES, MUSDB_STREAMS

STEM_FILE = ".stem.mp4"
SEEKABLE = (".wav", ".flac")  # soundfile reads a window of these without decoding the rest
LAYOUTS = (
    "<track>.stem.mp4 (MUSDB18) or <track>/{drums,bass,other,vocals}.<ext> with an optional mixture.<ext> "
    "(MUSDB18-HQ: .wav)"
)


def decoded_dir() -> Path:
    from .home import zoo_home

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

    def read_all(self) -> np.ndarray:
        """The whole stem, ``[2, frames]`` float32, decoded straight into memory (no cache file)."""
        audio = open_audio(self.path, self.stream).read()
        return np.ascontiguousarray(np.broadcast_to(audio, (2, audio.shape[1]))) if audio.shape[0] == 1 else audio

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
    with atomic_path(target) as temporary, open(temporary, "wb") as handle:
        np.save(handle, audio)
    return target


def combine(sources: dict[str, np.ndarray], name: str) -> np.ndarray:
    """The stem ``name`` from MUSDB's four sources (``accompaniment`` = drums + bass + other)."""
    if name not in MUSDB_MEANING:
        raise ZooError(f"stem {name!r} has no MUSDB18 definition (known: {', '.join(MUSDB_MEANING)})")
    parts = [sources[source] for source in MUSDB_MEANING[name]]
    return parts[0] if len(parts) == 1 else np.sum(parts, axis=0, dtype=np.float32)


@dataclass
class MusdbTrack:
    name: str
    stems: dict[str, StemFile]  # the four sources, and "mixture" when the track has its own
    subset: str = ""
    path: Optional[Path] = None

    @property
    def frames(self) -> int:
        return min(self.stems[name].frames for name in MUSDB_SOURCES)

    @property
    def sample_rate(self) -> int:
        return self.stems["vocals"].sample_rate

    @property
    def mixture_note(self) -> str:
        return "released mixture" if "mixture" in self.stems else "sum of the four sources"

    def read(self, stem: str, start: int, count: int) -> np.ndarray:
        """``[2, count]`` of one source (or the mixture) from ``start``."""
        return self.stems[stem].read(start, count)

    def load(self, seconds: Optional[float] = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The whole track (or its middle ``seconds``): (mixture, {source: audio}), each ``[2, N]`` float32. The
        mixture is the track's own when it has one, else the sum of the sources."""
        if seconds is None:  # whole stems straight into memory: evaluating a dataset fills no cache
            audio = {name: stem.read_all() for name, stem in self.stems.items()}
            count = min(a.shape[1] for a in audio.values())  # decoders may differ by a frame of priming
            sources = {name: audio[name][:, :count] for name in MUSDB_SOURCES}
            mixture = audio["mixture"][:, :count] if "mixture" in audio else None
        else:
            count = min(self.frames, max(1, round(seconds * self.sample_rate)))
            start = (self.frames - count) // 2
            sources = {name: self.read(name, start, count) for name in MUSDB_SOURCES}
            mixture = self.read("mixture", start, count) if "mixture" in self.stems else None
        return (sum(sources.values()) if mixture is None else mixture), sources

    def check(self) -> None:
        """Every stem at one sample rate, and some audio: what both evaluation and training need."""
        rates = {stem.sample_rate for stem in self.stems.values()}
        if len(rates) != 1:
            raise ZooError(f"{self.name}: stems at different sample rates {sorted(rates)}")
        if self.frames == 0:
            raise ZooError(f"{self.name}: no audio samples")


def open_track(path: Path, subset: str = "") -> MusdbTrack:
    """The track at ``path`` (a .stem.mp4 or a track folder); a one-line `ZooError` for anything else."""
    if not path.exists():
        raise ZooError(f"{path}: no such file or folder")
    if path.is_dir():
        stems = {}
        for name in ("mixture", *MUSDB_SOURCES):
            found = sorted(p for p in path.iterdir() if p.stem == name and p.suffix.lower() in AUDIO_EXTENSIONS)
            if found:
                stems[name] = StemFile.open(found[0])
            elif name != "mixture":
                raise ZooError(f"{path}: missing {name}.wav (or another audio file named {name}); expected {LAYOUTS}")
        track = MusdbTrack(path.name, stems, subset, path)
    elif path.name.lower().endswith(STEM_FILE):
        streams = {name: StemFile.open(path, index) for index, name in enumerate(MUSDB_STREAMS)}
        track = MusdbTrack(track_name(path), streams, subset, path)
    else:
        raise ZooError(f"{path}: expected a MUSDB18 .stem.mp4 file or a track folder ({LAYOUTS})")
    track.check()
    return track


def find_tracks(folder: Path, subset: str = "") -> tuple[list[MusdbTrack], list[str]]:
    """Every track directly in ``folder`` and, for those that cannot be used, ``"name: why"``."""
    tracks, skipped = [], []
    for entry in sorted(folder.iterdir()):
        if not (entry.is_dir() or entry.name.lower().endswith(STEM_FILE)):
            continue
        try:
            tracks.append(open_track(entry, subset))
        except ZooError as exc:
            skipped.append(f"{entry.name}: {str(exc).removeprefix(f'{entry}: ')}")
    return tracks, skipped


def references(sources: dict[str, np.ndarray], names: Sequence[str]) -> dict[str, np.ndarray]:
    """The reference of each named stem from the four sources."""
    return {name: combine(sources, name) for name in names}
