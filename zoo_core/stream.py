"""Live separation: blocks of any size in as they arrive, the same number of frames out, a fixed latency behind.

`StreamingSeparator` wraps the overlap-add engine (`zoo_core.separation.BlockSeparator`): every `push` of ``n``
frames returns exactly ``n`` frames of every stem, and `flush` returns the last ``latency`` frames. The output
stream is the offline separation delayed by ``latency`` frames: its first ``latency`` frames are silence, and
output frame ``i + latency`` is the estimate of input frame ``i`` — so concatenated and shifted back it equals
`zoo_core.separation.separate` with the same segment and overlap (tested to 1e-5 on a real song).

The latency is fixed by the geometry, not by the block sizes. At the model's rate a segment ``[s, s + segment)``
can run once its last frame has arrived, and frame ``s`` is final once that segment has run, so a frame waits
at most ``segment - 1`` frames (``segment + (batch - 1) * stride - 1`` with ``batch`` segments per model call):

    latency = segment - 1 frames                 (input at the model's rate, batch 1)

At other rates the two soxr resamplers (to the model's rate and back) add their delay, which depends only on
how many frames they have consumed, never on block sizes; their largest delay is measured once per rate pair
(`resampler_lag`) and added. Wall-clock latency is this plus the time one segment takes to compute
(`benchmarks/live.py` measures it). Memory is bounded: the engine holds about one segment, the output queue at
most ``latency`` frames plus the block being pushed (`held_frames`).
"""

from __future__ import annotations

import functools
import math
from collections import deque
from typing import Optional

import numpy as np

from .errors import ZooError
from .separation import Blocks, SeparationSettings
from .separation.engine import block_separator

_PROBE_SECONDS = 2.0  # soxr's delay settles into a cycle far shorter than this
_PROBE_CHUNK = 64


@functools.lru_cache(maxsize=None)
def resampler_lag(source_rate: int, target_rate: int) -> float:
    """The largest number of output frames a streaming soxr resampler (as `zoo_core.audio.StreamResampler`
    uses it) holds back: ``max over n of (n * target / source - frames out after n frames in)``.

    The count of frames out depends only on the frames in, so feeding ``chunk`` frames at a time sees every
    ``n`` that is a multiple of ``chunk``; between two of those the lag grows by at most ``(chunk - 1) *
    ratio`` (the output never shrinks), which is added as the bound."""
    if source_rate == target_rate:
        return 0.0
    from .audio import StreamResampler

    resampler = StreamResampler(source_rate, target_rate, 1)
    ratio = target_rate / source_rate
    zeros = np.zeros((_PROBE_CHUNK, 1), np.float32)
    consumed = produced = 0
    worst = 0.0
    for _ in range(int(_PROBE_SECONDS * source_rate) // _PROBE_CHUNK):
        produced += resampler(zeros).shape[0]
        consumed += _PROBE_CHUNK
        worst = max(worst, consumed * ratio - produced)
    return worst + (_PROBE_CHUNK - 1) * ratio


def stream_latency(model, sample_rate: int, options: SeparationSettings) -> int:
    """The fixed latency in frames at ``sample_rate`` of a stream with these options (see the module doc); an
    ensemble's is its slowest member's, plus what its rule adds (`zoo_core.ensemble.engine`)."""
    members = getattr(model, "members", None)
    if members:
        return max(stream_latency(m, sample_rate, options) for m in members) + model.added_latency
    segment, overlap = options.geometry(model)
    at_model_rate = segment + (options.batch_size - 1) * (segment - overlap) - 1
    if sample_rate == model.sample_rate:
        return at_model_rate
    ratio = model.sample_rate / sample_rate
    into_model = resampler_lag(sample_rate, model.sample_rate)  # in model frames
    back = resampler_lag(model.sample_rate, sample_rate)  # in input frames
    return math.ceil((into_model + at_model_rate) / ratio + back)


def options_for_latency(model, seconds: float, sample_rate: int, options: SeparationSettings) -> SeparationSettings:
    """``options`` with the longest segment (whole STFT hops, at most the default one) whose stream latency is
    at most ``seconds``; the overlap stays the same fraction of the segment. Shorter segments give the network
    less context (lower SDR, see docs/live-and-catalogues.md) and, below its time factor, padded frames to compute."""
    if not seconds > 0:
        raise ZooError(f"latency must be a positive number of seconds, got {seconds}")
    hop = model.hop_length
    longest = SeparationSettings(None, options.overlap, options.batch_size).geometry(model)[0] // hop
    for hops in range(longest, 1, -1):
        candidate = SeparationSettings(hops * hop / model.sample_rate, options.overlap, options.batch_size)
        if stream_latency(model, sample_rate, candidate) <= seconds * sample_rate:
            return candidate
    shortest = stream_latency(model, sample_rate, SeparationSettings(2 * hop / model.sample_rate, options.overlap, options.batch_size))
    raise ZooError(f"latency {seconds} s is below this model's minimum of {shortest / sample_rate:.3f} s (a segment of two STFT hops)")


class StreamingSeparator:
    """Separate a live stream: `push` ``[frames, channels]`` float32 blocks of any size (mono or stereo, at
    ``sample_rate``, default the model's), get ``{stem: [frames, channels]}`` with exactly as many frames back,
    ``latency`` frames behind; `flush` at the end returns the last ``latency`` frames.

    Example::

        separator = StreamingSeparator(zoo_core.load("NAME"), 44100, channels=2)
        for block in blocks:                       # e.g. from a sound card
            play(separator.push(block)["accompaniment"])
        play(separator.flush()["accompaniment"])
    """

    def __init__(self, model, sample_rate: Optional[int] = None, channels: int = 2,
                 options: SeparationSettings = SeparationSettings()):
        self.sample_rate = int(sample_rate or model.sample_rate)
        self.channels = channels
        self.options = options
        self.separator = block_separator(model, self.sample_rate, channels, options)
        self.stems: list[str] = self.separator.stems
        self.latency = stream_latency(model, self.sample_rate, options)
        self._silence = self.latency  # the stream starts with this much silence
        self._ready: deque[Blocks] = deque()  # estimates computed but not yet due
        self._ready_frames = 0
        self._flushed = False

    @property
    def latency_seconds(self) -> float:
        return self.latency / self.sample_rate

    def push(self, block: np.ndarray) -> Blocks:
        """Add ``[n, channels]`` frames; returns ``n`` frames of every stem."""
        block = self._checked(block)
        self._add(self.separator.push(block))
        return self._take(block.shape[0])

    def flush(self) -> Blocks:
        """End of the stream: the remaining ``latency`` frames of every stem."""
        if self._flushed:
            raise ZooError("the stream was already flushed")
        self._flushed = True
        self._add(self.separator.finish())
        return self._take(self._silence + self._ready_frames)

    def held_frames(self) -> int:
        """Frames held in every buffer: bounded by about a segment plus the latency, whatever the stream's length."""
        return self.separator.held_frames() + self._ready_frames

    def _checked(self, block: np.ndarray) -> np.ndarray:
        if self._flushed:
            raise ZooError("the stream was already flushed")
        block = np.asarray(block, dtype=np.float32)
        if block.ndim != 2 or block.shape[1] != self.channels:
            raise ZooError(f"expected blocks of [frames, {self.channels}] samples, got shape {list(block.shape)}")
        if not np.isfinite(block).all():
            raise ZooError("the stream contains NaN or infinite samples")
        return block

    def _add(self, estimates: Blocks) -> None:
        frames = next(iter(estimates.values())).shape[0]
        if frames:
            self._ready.append(estimates)
            self._ready_frames += frames

    def _take(self, count: int) -> Blocks:
        silent = min(count, self._silence)
        self._silence -= silent
        needed = count - silent
        if needed > self._ready_frames:  # the latency bound is a theorem at the model's rate, measured for soxr
            raise RuntimeError(f"stream fell behind its latency of {self.latency} frames; please report this bug")
        parts: list[Blocks] = [{stem: np.zeros((silent, self.channels), np.float32) for stem in self.stems}]
        while needed:
            head = self._ready[0]
            frames = next(iter(head.values())).shape[0]
            if frames <= needed:
                parts.append(self._ready.popleft())
            else:
                parts.append({stem: audio[:needed] for stem, audio in head.items()})
                self._ready[0] = {stem: audio[needed:] for stem, audio in head.items()}
                frames = needed
            needed -= frames
            self._ready_frames -= frames
        return {stem: np.concatenate([part[stem] for part in parts]) for stem in self.stems}
