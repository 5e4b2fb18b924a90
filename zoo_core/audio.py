"""Reading, writing and resampling audio, block by block.

Everything streams so that an hour-long track never sits in memory: `open_audio` gives a reader whose
`AudioReader.blocks` yields ``[frames, channels]`` float32 blocks (soundfile for WAV/FLAC/OGG/MP3, PyAV for
MP4/M4A/AAC, where a MUSDB ``.stem.mp4`` holds the mixture in stream 0), `AtomicWriter` writes blocks (WAV and
FLAC with soundfile, MP3 with PyAV's LAME encoder) under a temporary name and renames on success, and
`StreamResampler` wraps soxr's streaming resampler. Every problem a user can fix (missing, empty, unreadable,
truncated file, NaN samples, too many channels) is a one-line `ZooError` naming the file.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from .errors import ZooError, first_line
from .files import check_writable, make_folders, remove_empty_folders, remove_stale_temporaries, temporary_path
from .native import native_stderr_discarded

SOUNDFILE_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
PYAV_EXTENSIONS = (".mp4", ".m4a", ".aac")
AUDIO_EXTENSIONS = SOUNDFILE_EXTENSIONS + PYAV_EXTENSIONS
# the stream order of MUSDB18 .stem.mp4 files
MUSDB_STEMS = ("mixture", "drums", "bass", "other", "vocals")
OUTPUT_FORMATS = {"wav": "WAV", "flac": "FLAC", "mp3": "MP3"}
OUTPUT_BITS = {"16": "PCM_16", "24": "PCM_24", "float": "FLOAT"}
MP3_BITRATE = 320_000  # bits per second, constant: what demucs writes by default (LAME's best; below 32 kHz the
# MPEG-2 rates allow 160 kbps at most, which LAME then writes)
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)  # what the MPEG audio standards allow
BLOCK_FRAMES = 1 << 16  # about 1.5 s at 44.1 kHz: large enough to amortise overhead, small enough to stream

# libsndfile repairs a WAV whose data chunk is longer than the file and logs "data : N (should be M)"; 0 and
# 0xFFFFFFFF are what streaming writers put in a header they cannot seek back to, not truncation.
_WAV_LENGTH_FIX = re.compile(r"data\s*:\s*(\d+)\s*\(should be (\d+)\)")
_STREAMED_WAV_SIZES = (0, 0xFFFFFFFF)
# decoders may drop a frame or two of priming at the edges; a shortfall beyond that means the file ends early
_SHORTFALL_TOLERANCE = 2048


def track_name(path: Path) -> str:
    """``song.wav`` → ``song``; ``x.stem.mp4`` → ``x``."""
    name = path.name
    for suffix in (".stem.mp4", *AUDIO_EXTENSIONS):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def is_audio_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in AUDIO_EXTENSIONS


class AudioReader(ABC):
    """An open audio file: ``sample_rate``, ``channels``, ``frames`` (the length the file declares) and
    `blocks`, which checks every block for NaN/Inf and the total for truncation."""

    def __init__(self, path: Path, sample_rate: int, channels: int, frames: int):
        self.path = path
        self.sample_rate = sample_rate
        self.channels = channels
        self.frames = frames

    def blocks(self, block_frames: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
        decoded = 0
        for block in self._decode(block_frames):
            if not np.isfinite(block).all():
                raise ZooError(f"{self.path}: contains NaN or infinite samples")
            decoded += block.shape[0]
            yield block
        if decoded == 0:
            raise ZooError(f"{self.path}: no audio samples")
        if decoded + _SHORTFALL_TOLERANCE < self.frames:
            raise ZooError(f"{self.path}: truncated file (decoded {decoded} of {self.frames} declared samples)")

    def read(self) -> np.ndarray:
        """The whole file as ``[channels, frames]`` float32."""
        return np.concatenate(list(self.blocks()), axis=0).T.copy()

    @abstractmethod
    def _decode(self, block_frames: int) -> Iterator[np.ndarray]:
        """Raw ``[frames, channels]`` float32 blocks."""


class _SoundFileReader(AudioReader):
    def __init__(self, path: Path):
        import soundfile

        try:  # mpg123 prints resync notes for bytes that are not MP3: the error below says it in one line
            with native_stderr_discarded(), soundfile.SoundFile(str(path)) as handle:
                info = handle.extra_info
                sample_rate, channels, frames = handle.samplerate, handle.channels, handle.frames
        except (soundfile.LibsndfileError, RuntimeError) as exc:
            reason = first_line(exc)
            if "not a regular file" in reason:  # libsndfile's words for undecodable bytes in an existing file
                reason = f"its bytes are not {path.suffix.lstrip('.').upper() or 'audio'} that libsndfile can decode"
            raise ZooError(f"{path}: cannot read audio ({reason})") from None
        for declared, actual in _WAV_LENGTH_FIX.findall(info):
            if int(declared) > int(actual) and int(declared) not in _STREAMED_WAV_SIZES:
                raise ZooError(f"{path}: truncated file (header declares {declared} data bytes, file holds {actual})")
        if "lacks an end-of-stream" in info:
            raise ZooError(f"{path}: truncated file (the last Ogg page is missing)")
        super().__init__(path, sample_rate, channels, frames)

    def _decode(self, block_frames: int) -> Iterator[np.ndarray]:
        import soundfile

        try:
            with soundfile.SoundFile(str(self.path)) as handle:
                while True:
                    block = handle.read(block_frames, dtype="float32", always_2d=True)
                    if block.shape[0] == 0:
                        return
                    yield block
        except soundfile.LibsndfileError as exc:
            raise ZooError(f"{self.path}: cannot decode ({first_line(exc)}); the file may be truncated") from None


class _PyAVReader(AudioReader):
    def __init__(self, path: Path, stream: int = 0):
        import av

        self.stream_index = stream
        try:
            with av.open(str(path)) as container:
                streams = container.streams.audio
                if not streams:
                    raise ZooError(f"{path}: no audio stream")
                if stream >= len(streams):
                    raise ZooError(f"{path}: has {len(streams)} audio streams, not {stream + 1}")
                audio = streams[stream]
                sample_rate, channels = audio.rate, audio.channels
                frames = _declared_frames(audio)
        except av.error.FFmpegError as exc:
            raise ZooError(f"{path}: cannot read audio ({first_line(exc)})") from None
        super().__init__(path, sample_rate, channels, frames)

    def _decode(self, block_frames: int) -> Iterator[np.ndarray]:
        import av

        pending: list[np.ndarray] = []
        pending_frames = 0
        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.audio[self.stream_index]
                # packed float32 whatever the codec's native sample format
                converter = av.AudioResampler(format="flt", layout=stream.layout, rate=stream.rate)
                for frame in container.decode(stream):
                    for converted in converter.resample(frame):
                        block = converted.to_ndarray().reshape(-1, self.channels)
                        pending.append(block)
                        pending_frames += block.shape[0]
                    if pending_frames >= block_frames:
                        yield np.concatenate(pending)
                        pending, pending_frames = [], 0
                for converted in converter.resample(None):
                    pending.append(converted.to_ndarray().reshape(-1, self.channels))
        except av.error.FFmpegError as exc:
            raise ZooError(f"{self.path}: cannot decode ({first_line(exc)}); the file may be truncated") from None
        if pending:
            yield np.concatenate(pending)


def _declared_frames(stream) -> int:
    if stream.duration is None or stream.time_base is None:
        return 0
    return int(round(float(stream.duration * stream.time_base) * stream.rate))


def check_input_path(path: Path) -> None:
    """The checks every input file gets before it is opened."""
    if not path.exists():
        raise ZooError(f"{path}: no such file")
    if path.is_dir():
        raise ZooError(f"{path}: is a directory")
    if path.suffix.lower() not in AUDIO_EXTENSIONS:
        raise ZooError(f"{path}: unsupported extension {path.suffix!r} (supported: {', '.join(AUDIO_EXTENSIONS)})")
    if path.stat().st_size == 0:
        raise ZooError(f"{path}: empty file")


def open_audio(path: str | os.PathLike, stream: int = 0, max_channels: Optional[int] = 2) -> AudioReader:
    """Open ``path`` for block-wise reading; ``stream`` picks the audio stream of an MP4 (0 = MUSDB mixture)."""
    path = Path(path)
    check_input_path(path)
    if path.suffix.lower() in PYAV_EXTENSIONS:
        reader: AudioReader = _PyAVReader(path, stream)
    else:
        if stream != 0:
            raise ZooError(f"{path}: only MP4/M4A files hold several streams")
        reader = _SoundFileReader(path)
    if max_channels is not None and reader.channels > max_channels:
        raise ZooError(f"{path}: {reader.channels} channels; only mono and stereo are supported")
    return reader


def read_audio(path: str | os.PathLike, stream: int = 0) -> tuple[np.ndarray, int]:
    """The whole file (``stream`` of an MP4) as ``([channels, frames] float32, sample_rate)``."""
    reader = open_audio(path, stream)
    return reader.read(), reader.sample_rate


def read_stems(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], int]:
    """Every stream of a MUSDB ``.stem.mp4``: ``{"mixture", "drums", "bass", "other", "vocals"}`` → ``[C, N]``."""
    path = Path(path)
    first = open_audio(path, 0)
    if not isinstance(first, _PyAVReader):
        raise ZooError(f"{path}: not a stem file (expected a MUSDB .stem.mp4)")
    import av

    with av.open(str(path)) as container:
        count = len(container.streams.audio)
    if count != len(MUSDB_STEMS):
        raise ZooError(f"{path}: {count} audio streams; a MUSDB stem file has {len(MUSDB_STEMS)} ({', '.join(MUSDB_STEMS)})")
    stems = {name: open_audio(path, index).read() for index, name in enumerate(MUSDB_STEMS)}
    lengths = {audio.shape[1] for audio in stems.values()}
    if len(lengths) != 1:
        raise ZooError(f"{path}: stems of different lengths {sorted(lengths)}")
    return stems, first.sample_rate


def subtype_for(format: str, bits: Optional[str]) -> str:
    """soundfile subtype for ``--format``/``--bits``; None picks float for WAV and 24-bit for FLAC. MP3 has no
    bit depth: it is written at `MP3_BITRATE`."""
    if format not in OUTPUT_FORMATS:
        raise ZooError(f"unsupported output format {format!r} (choose {', '.join(OUTPUT_FORMATS)})")
    if format == "mp3":
        if bits is not None:
            raise ZooError(f"--bits applies to wav and flac; mp3 is written at {MP3_BITRATE // 1000} kbps")
        return "MP3"
    bits = bits or ("float" if format == "wav" else "24")
    if bits not in OUTPUT_BITS:
        raise ZooError(f"unsupported bit depth {bits!r} (choose {', '.join(OUTPUT_BITS)})")
    if format == "flac" and bits == "float":
        raise ZooError("FLAC stores integer samples only; use --bits 16 or 24, or --format wav")
    return OUTPUT_BITS[bits]


class AtomicWriter:
    """Writes ``[frames, channels]`` blocks to a temporary file in ``path``'s own folder (`zoo_core.files`);
    `commit` moves it to ``path``, `discard` (or leaving the ``with`` block on an exception) removes it and the
    folders made for it, so no half-written file and no empty folder remain. Several writers into one new folder
    are discarded in the reverse order of their creation. For integer formats it counts the samples that clip
    (``clipped``): float WAV keeps values beyond ±1, 16- and 24-bit cannot."""

    def __init__(self, path: Path, sample_rate: int, channels: int, format: str = "wav", subtype: str = "FLOAT"):
        import soundfile

        self.path = Path(path)
        check_writable(self.path)
        self.made = make_folders(self.path.parent)
        remove_stale_temporaries(self.path.parent, [self.path.name])
        self.temporary = temporary_path(self.path)
        self.integer = subtype.startswith("PCM")
        self.clipped = 0
        try:
            if format == "mp3":
                self._file = _Mp3File(self.temporary, sample_rate, channels)
            else:
                self._file = soundfile.SoundFile(
                    self.temporary, "w", samplerate=sample_rate, channels=channels, format=OUTPUT_FORMATS[format],
                    subtype=subtype,
                )
        except BaseException:
            self.temporary.unlink(missing_ok=True)
            remove_empty_folders(self.made)
            raise

    def write(self, block: np.ndarray) -> None:
        if self.integer:  # the largest integer sample is just below 1.0: anything at or beyond ±1 is cut
            self.clipped += int(np.count_nonzero((block >= 1.0) | (block < -1.0)))
        self._file.write(block)

    def commit(self) -> None:
        self._file.close()
        os.replace(self.temporary, self.path)

    def discard(self) -> None:
        self._file.close()
        self.temporary.unlink(missing_ok=True)
        remove_empty_folders(self.made)

    def __enter__(self) -> "AtomicWriter":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is not None:
            self.discard()


class _Mp3File:
    """An MP3 file written with PyAV's LAME encoder (libmp3lame), constant `MP3_BITRATE`; LAME's header records
    its encoder delay and padding, so decoders give back exactly the samples written. The same ``write`` /
    ``close`` as a soundfile."""

    def __init__(self, path: Path, sample_rate: int, channels: int):
        import av

        if sample_rate not in MP3_RATES:
            raise ZooError(f"mp3 cannot store {sample_rate} Hz (MPEG audio allows {', '.join(map(str, MP3_RATES))}); "
                           "use --format wav or flac")
        if channels not in (1, 2):
            raise ZooError(f"mp3 stores mono or stereo, not {channels} channels; use --format wav or flac")
        self.layout = "mono" if channels == 1 else "stereo"
        self.sample_rate = sample_rate
        self._container = av.open(str(path), "w", format="mp3")  # whatever the file's name ends with
        try:
            self._stream = self._container.add_stream("libmp3lame", rate=sample_rate, layout=self.layout)
            self._stream.bit_rate = MP3_BITRATE
        except BaseException:
            self._container.close()
            raise

    def write(self, block: np.ndarray) -> None:
        import av

        if not block.shape[0]:
            return
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block.T, np.float32), format="fltp", layout=self.layout)
        frame.sample_rate = self.sample_rate
        for packet in self._stream.encode(frame):  # PyAV cuts frames to the encoder's 1152 samples
            self._container.mux(packet)

    def close(self) -> None:
        if self._container is None:
            return
        try:
            for packet in self._stream.encode(None):  # flush the encoder
                self._container.mux(packet)
        finally:
            self._container.close()
            self._container = None


def write_audio(
    path: str | os.PathLike, audio: np.ndarray, sample_rate: int, format: str = "wav", bits: Optional[str] = None
) -> int:
    """Write ``[channels, frames]`` audio atomically; returns the number of clipped samples (integer formats)."""
    with AtomicWriter(Path(path), sample_rate, audio.shape[0], format, subtype_for(format, bits)) as writer:
        writer.write(np.ascontiguousarray(audio.T))
        writer.commit()
    return writer.clipped


class StreamResampler:
    """soxr's streaming resampler (quality HQ) for ``[frames, channels]`` float32 blocks; a pass-through when the
    rates are equal. Concatenated outputs equal resampling the whole signal at once."""

    def __init__(self, source_rate: int, target_rate: int, channels: int):
        self._stream = None
        if source_rate != target_rate:
            import soxr

            self._stream = soxr.ResampleStream(source_rate, target_rate, channels, dtype="float32", quality="HQ")

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        if self._stream is None:
            return block
        return self._stream.resample_chunk(np.ascontiguousarray(block, dtype=np.float32), last=last)
