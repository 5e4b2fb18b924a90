"""Raw PCM and WAV streams on pipes, for `zoo stream`: decode bytes as they arrive, encode blocks to bytes.

A pipe cannot seek, so a WAV header is parsed by hand while reading forward: ``RIFF``/``RF64`` and ``WAVE``,
the ``fmt `` chunk (PCM 16/24/32-bit or IEEE float 32/64-bit, plain or WAVE_FORMAT_EXTENSIBLE), chunks skipped
until ``data``. A data size of 0 or 0xFFFFFFFF (what ffmpeg writes to a pipe) means "until the end of input".
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import numpy as np

from .errors import ZooError

RAW_FORMATS = ("f32le", "s16le")  # what --input-format names; a WAV header may also declare the others below
# float audio is about ±1 (a hot master a few times that); integer PCM read as floats gives NaN, infinities and
# values like 1e30 as soon as a sample is negative
PLAUSIBLE_FLOAT_PEAK = 1000.0
_READ_BYTES = 1 << 15  # per read(): a pipe returns what it has, so small reads keep the latency low
_STREAMED_SIZES = (0, 0xFFFFFFFF)


@dataclass(frozen=True)
class SampleFormat:
    name: str
    dtype: str  # numpy dtype of one sample (little-endian)
    scale: float  # integer full scale; 0 for float formats

    @property
    def width(self) -> int:
        return 3 if self.name == "s24le" else np.dtype(self.dtype).itemsize

    def decode(self, data: bytes, channels: int) -> np.ndarray:
        """Whole frames of little-endian samples → ``[frames, channels]`` float32 in [-1, 1)."""
        if self.name == "s24le":  # no numpy dtype: widen each sample to 32 bits (low byte 0)
            raw = np.frombuffer(data, np.uint8).reshape(-1, 3)
            wide = np.zeros((raw.shape[0], 4), np.uint8)
            wide[:, 1:] = raw
            samples = wide.view("<i4").reshape(-1).astype(np.float32) / 2.0**31
        else:
            samples = np.frombuffer(data, self.dtype).astype(np.float32)
            if self.scale:
                samples /= self.scale
        return samples.reshape(-1, channels)

    def encode(self, frames: np.ndarray) -> bytes:
        """``[frames, channels]`` float → interleaved little-endian bytes (integers clipped to full scale)."""
        if self.name not in RAW_FORMATS:
            raise ZooError(f"cannot write {self.name}; choose {', '.join(RAW_FORMATS)}")
        if self.scale:
            frames = np.clip(np.round(frames * self.scale), -self.scale, self.scale - 1)
        return np.ascontiguousarray(frames, dtype=self.dtype).tobytes()


FORMATS = {
    "f32le": SampleFormat("f32le", "<f4", 0.0),
    "f64le": SampleFormat("f64le", "<f8", 0.0),
    "s16le": SampleFormat("s16le", "<i2", 32768.0),
    "s24le": SampleFormat("s24le", "<i4", 2.0**23),
    "s32le": SampleFormat("s32le", "<i4", 2.0**31),
}
_WAV_FORMATS = {(1, 16): "s16le", (1, 24): "s24le", (1, 32): "s32le", (3, 32): "f32le", (3, 64): "f64le"}
_EXTENSIBLE = 0xFFFE


@dataclass(frozen=True)
class StreamFormat:
    """What the bytes on a stream mean."""

    sample: SampleFormat
    sample_rate: int
    channels: int

    @property
    def frame_bytes(self) -> int:
        return self.sample.width * self.channels

    def describe(self) -> str:
        layout = {1: "mono", 2: "stereo"}.get(self.channels, f"{self.channels} channels")
        return f"{self.sample.name} {self.sample_rate} Hz {layout}"


class PcmInput:
    """Frames from a file descriptor (standard input), as they arrive: raw PCM in a given format, or a WAV
    stream when the first bytes are a RIFF header (whose format then applies)."""

    def __init__(self, fd: int, raw: StreamFormat, what: str = "standard input"):
        self.fd = fd
        self.what = what
        self._pending = b""
        self._remaining: Optional[int] = None  # data bytes left by the WAV header; None: until the end
        self.is_wav = False
        head = self._read_exactly(4, allow_short=True)
        if head in (b"RIFF", b"RF64"):
            self.is_wav = True
            self.format = self._wav_header()
        else:
            self._pending = head
            self.format = raw

    def blocks(self) -> Iterator[np.ndarray]:
        """``[frames, channels]`` float32 blocks of whatever whole frames have arrived."""
        frame = self.format.frame_bytes
        while True:
            data = self._pending + self._read_some()
            if len(data) == len(self._pending):  # end of input
                if self._pending:
                    raise ZooError(f"{self.what}: ends in the middle of a frame ({len(self._pending)} stray bytes)")
                return
            whole = len(data) - len(data) % frame
            self._pending = data[whole:]
            if whole:
                yield self._plausible(self.format.sample.decode(data[:whole], self.format.channels))

    def _plausible(self, block: np.ndarray) -> np.ndarray:
        """Raw float input that cannot be audio is most likely integer PCM sent without saying so."""
        if self.is_wav or self.format.sample.scale:
            return block
        if not np.isfinite(block).all() or np.abs(block).max() > PLAUSIBLE_FLOAT_PEAK:
            raise ZooError(f"{self.what}: not plausible {self.format.sample.name} audio (NaN, infinite or beyond "
                           f"±{PLAUSIBLE_FLOAT_PEAK:g}); for 16-bit PCM pass --input-format s16le, or send WAV")
        return block

    def _read_some(self) -> bytes:
        size = _READ_BYTES if self._remaining is None else min(_READ_BYTES, self._remaining)
        if size == 0:
            return b""
        data = os.read(self.fd, size)
        if self._remaining is not None:
            self._remaining -= len(data)
        return data

    def _read_exactly(self, count: int, allow_short: bool = False) -> bytes:
        data = b""
        while len(data) < count:
            more = os.read(self.fd, count - len(data))
            if not more:
                if allow_short:
                    return data
                raise ZooError(f"{self.what}: the WAV header ends early")
            data += more
        return data

    def _wav_header(self) -> StreamFormat:
        _size, wave = struct.unpack("<I4s", self._read_exactly(8))
        if wave != b"WAVE":
            raise ZooError(f"{self.what}: a RIFF stream that is not WAVE")
        found: Optional[StreamFormat] = None
        while True:
            chunk, size = struct.unpack("<4sI", self._read_exactly(8))
            if chunk == b"data":
                if found is None:
                    raise ZooError(f"{self.what}: WAV data before its fmt chunk")
                self._remaining = None if size in _STREAMED_SIZES else size
                return found
            body = self._read_exactly(size + size % 2)  # chunks are padded to an even size
            if chunk == b"fmt ":
                found = self._wav_format(body[:size])

    def _wav_format(self, body: bytes) -> StreamFormat:
        if len(body) < 16:
            raise ZooError(f"{self.what}: WAV fmt chunk too short")
        tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
        if tag == _EXTENSIBLE and len(body) >= 26:
            tag = struct.unpack("<H", body[24:26])[0]  # the sub-format GUID starts with the plain tag
        name = _WAV_FORMATS.get((tag, bits))
        if name is None:
            raise ZooError(f"{self.what}: unsupported WAV encoding (format tag {tag}, {bits} bits); "
                           "send 16/24/32-bit PCM or 32/64-bit float")
        if channels < 1 or rate < 1:
            raise ZooError(f"{self.what}: WAV header declares {channels} channels at {rate} Hz")
        return StreamFormat(FORMATS[name], rate, channels)


def write_all(fd: int, data: bytes, write: Callable[[int, memoryview], int] = os.write) -> None:
    """Write every byte (a pipe may take fewer than offered); raises BrokenPipeError when the reader is gone."""
    view = memoryview(data)
    while view:
        view = view[write(fd, view):]
