"""The separation engine: streaming overlap-add over any model (`separate_blocks`, `OverlapAdd`).

The track is cut into overlapping segments (`zoo_core.chunking.segment_starts`), segments go through the model
in batches and are blended back with `zoo_core.chunking.overlap_weights`, exactly as the exported TorchScript
module and the C++ host do. Every segment goes to the model at its own length (only the track's last one can be
shorter) and the model pads it internally. The engine is streaming: it holds about
``batch_size * stride + segment`` input samples and hands back every output sample no later segment can touch,
so decoding, resampling, separation and writing run block by block and memory stays flat for any track length.

Every stem the model estimates comes out (``model.stems``), plus ``accompaniment`` = mixture − vocals for a
model with a vocals stem (`zoo_core.stems`; written by default for a model that estimates vocals alone). The
engine needs of ``model`` only: calling it on ``[batch, 2, samples]`` to get ``[batch, stems, 2, samples]``,
and ``sample_rate``, ``hop_length``, ``stems`` and ``training_segment()``.

``method="authors"`` instead runs `zoo_core.reproduce.separate_like_authors` (the original chunk-and-trim
procedure of the paper's authors) on the whole track: the path that reproduces the paper's numbers.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Optional

import numpy as np
import torch
from torch import Tensor

from ..audio import StreamResampler
from ..chunking import DEFAULT_OVERLAP, overlap_weights, segment_starts
from ..errors import ZooError
from ..stems import ACCOMPANIMENT, available_stems, can_complement

DEFAULT_BATCH_SIZE = 1  # on CPU a batch of one is fastest and smallest; raise it on a GPU
METHODS = ("overlap-add", "authors")

Progress = Callable[[int], None]  # called with the number of input samples just consumed
Blocks = dict[str, np.ndarray]  # stem -> [frames, channels] float32


@dataclass(frozen=True)
class SeparationSettings:
    """How a track is cut: ``segment`` seconds (None: the model's training window), ``overlap`` as a fraction of
    a segment (None: the model's default, `DEFAULT_OVERLAP` unless its registry entry says otherwise; both rounded
    to whole STFT hops, see `geometry`), segments per model call, and the method (``overlap-add`` or
    ``authors``)."""

    segment: Optional[float] = None
    overlap: Optional[float] = None
    batch_size: int = DEFAULT_BATCH_SIZE
    method: str = "overlap-add"

    def validate(self) -> None:
        if self.segment is not None and not self.segment > 0:
            raise ZooError(f"segment must be a positive number of seconds, got {self.segment}")
        if self.overlap is not None and not 0 <= self.overlap < 1:
            raise ZooError(f"overlap must be a fraction in [0, 1), got {self.overlap}")
        if self.batch_size < 1:
            raise ZooError(f"batch size must be at least 1, got {self.batch_size}")
        if self.method not in METHODS:
            raise ZooError(f"unknown method {self.method!r} (choose {', '.join(METHODS)})")

    def geometry(self, model) -> tuple[int, int]:
        """(segment, overlap) in samples at the model's rate, both whole STFT hops: every segment then starts
        on one global frame grid, so overlapping segments see the same frames and blend without seams (see
        docs/separating.md for the measured difference). A segment shorter than two hops is refused."""
        hop = model.hop_length
        if self.segment is None:
            hops = model.training_segment() // hop
        else:
            hops = round(self.segment * model.sample_rate / hop)
            if hops < 2:
                shortest = 2 * hop / model.sample_rate
                raise ZooError(f"segment {self.segment} s is shorter than this model's minimum of {shortest:.3f} s (two STFT hops)")
        overlap = self.overlap if self.overlap is not None else getattr(model, "default_overlap", DEFAULT_OVERLAP)
        overlap_hops = min(round(overlap * hops), hops - 1)
        return hops * hop, overlap_hops * hop


def _model_device(model) -> torch.device:
    for parameter in model.parameters():
        return parameter.device
    return torch.device("cpu")


class OverlapAdd:
    """Streaming overlap-add at the model's rate: `push` stereo ``[2, n]`` blocks, `finish` at the end; both
    return the part of the estimates that is final, ``[stems, 2, m]``. The concatenated outputs equal
    ``sum(w_k * model(segment_k)) / sum(w_k)`` over the whole track, whatever the block sizes."""

    def __init__(self, model, segment: int, overlap: int, batch_size: int = DEFAULT_BATCH_SIZE):
        self.model = model
        self.segment = segment
        self.overlap = overlap
        self.stride = segment - overlap
        self.batch_size = batch_size
        self.device = _model_device(model)
        self.full_weights = overlap_weights(segment, overlap)
        self.stems = len(model.stems)
        self.received = 0
        self.next_start = 0  # the next segment to run starts here (absolute sample index)
        self.inputs = torch.zeros(2, 0)
        self.inputs_start = 0
        self.sums = torch.zeros(self.stems, 2, 0)  # weighted outputs not yet final
        self.weights = torch.zeros(0)
        self.sums_start = 0

    def push(self, block: Tensor) -> Tensor:
        self.inputs = torch.cat([self.inputs, block.float()], dim=1)
        self.received += block.shape[-1]
        while self.next_start + (self.batch_size - 1) * self.stride + self.segment <= self.received:
            self._run([self.next_start + k * self.stride for k in range(self.batch_size)])
        return self._release(self.next_start)

    def finish(self) -> Tensor:
        total = self.received
        if total == 0:
            return torch.zeros(self.stems, 2, 0)
        starts = [s for s in segment_starts(total, self.segment, self.overlap) if s >= self.next_start]
        full = [s for s in starts if s + self.segment <= total]
        for first in range(0, len(full), self.batch_size):
            self._run(full[first : first + self.batch_size])
        if len(full) < len(starts):
            self._run(starts[len(full) :])
        return self._release(total)

    def _run(self, starts: list[int]) -> None:
        length = min(self.segment, self.received - starts[0])
        offsets = [s - self.inputs_start for s in starts]
        batch = torch.stack([self.inputs[:, o : o + length] for o in offsets]).to(self.device)
        with torch.inference_mode():
            estimates = self.model(batch).to("cpu", torch.float32)
        weights = self.full_weights if length == self.segment else overlap_weights(length, self.overlap)
        end = starts[-1] + length - self.sums_start
        if end > self.weights.shape[0]:
            grow = end - self.weights.shape[0]
            self.sums = torch.cat([self.sums, torch.zeros(self.stems, 2, grow)], dim=2)
            self.weights = torch.cat([self.weights, torch.zeros(grow)])
        for start, estimate in zip(starts, estimates):
            at = start - self.sums_start
            self.sums[..., at : at + length] += estimate * weights
            self.weights[at : at + length] += weights
        self.next_start = starts[-1] + self.stride

    def _release(self, upto: int) -> Tensor:
        """Normalised output up to ``upto`` (no later segment reaches there), and drop what is no longer needed."""
        count = max(0, min(upto, self.received) - self.sums_start)
        done = self.sums[..., :count] / self.weights[:count]
        self.sums, self.weights = self.sums[..., count:], self.weights[count:]
        self.sums_start += count
        drop = max(0, min(self.next_start, self.received) - self.inputs_start)
        self.inputs = self.inputs[:, drop:]
        self.inputs_start += drop
        return done


def separate_blocks(
    model,
    blocks: Iterable[np.ndarray],
    sample_rate: int,
    channels: int,
    options: SeparationSettings = SeparationSettings(),
    progress: Optional[Progress] = None,
) -> Iterator[Blocks]:
    """Mixture ``[frames, channels]`` float32 blocks → ``{stem: block}`` at the same rate and channel count, with
    exactly as many frames in total, for every stem of `available_stems`. Mono is separated as duplicated stereo and
    the estimates averaged back; other rates are resampled to the model's rate and back (soxr, streaming)."""
    options.validate()
    if options.method == "authors":
        if hasattr(model, "block_separator") or hasattr(model, "inner"):
            raise ZooError("--method authors runs one model alone; ensembles and --tta separate with overlap-add")
        _check_channels(channels)
        yield from _separate_like_authors(model, blocks, sample_rate, channels, progress)
        return
    separator = block_separator(model, sample_rate, channels, options)
    for block in blocks:
        estimates = separator.push(block)
        if _frames(estimates):
            yield estimates
        if progress is not None:
            progress(block.shape[0])
    estimates = separator.finish()
    if _frames(estimates):
        yield estimates


def block_separator(model, sample_rate: int, channels: int, options: SeparationSettings = SeparationSettings()):
    """`BlockSeparator` for ``model``, or the model's own (an ensemble's, `zoo_core.ensemble`)."""
    own = getattr(model, "block_separator", None)
    return own(sample_rate, channels, options) if own is not None else BlockSeparator(model, sample_rate, channels, options)


def _check_channels(channels: int) -> None:
    if channels not in (1, 2):
        raise ZooError(f"{channels} channels; only mono and stereo are supported")


def _frames(blocks: Blocks) -> int:
    return next(iter(blocks.values())).shape[0]


class BlockSeparator:
    """The overlap-add engine at the input's rate and channel count, fed by `push` as blocks arrive: resampling
    to the model's rate and back, mono as duplicated stereo, the complement stem. `push` (``[frames,
    channels]`` float32) and `finish` return ``{stem: [m, channels]}`` for the samples that are now final
    (``m`` may be 0); concatenated, they hold exactly as many frames as were pushed. `separate_blocks` is a
    loop over this class; `zoo_core.stream.StreamingSeparator` adds a fixed latency on top."""

    def __init__(self, model, sample_rate: int, channels: int, options: SeparationSettings = SeparationSettings()):
        options.validate()
        _check_channels(channels)
        if options.method != "overlap-add":
            raise ZooError(f"method {options.method!r} needs the whole track; block-wise separation is overlap-add")
        self.channels = channels
        self.stems = available_stems(model.stems)
        self.engine = OverlapAdd(model, *options.geometry(model), batch_size=options.batch_size)
        self.to_model = StreamResampler(sample_rate, model.sample_rate, 2)
        self.from_model = StreamResampler(model.sample_rate, sample_rate, 2 * len(model.stems))
        self.pairing = _Pairing(model.stems, channels)

    def push(self, block: np.ndarray) -> Blocks:
        self.pairing.add_mixture(block)
        stereo = block if self.channels == 2 else np.repeat(block, 2, axis=1)
        estimates = self.engine.push(torch.from_numpy(self.to_model(stereo)).T)
        return self._collect(self.pairing.add_estimates(self.from_model(_interleave(estimates))))

    def finish(self) -> Blocks:
        estimates = self.engine.push(torch.from_numpy(self.to_model(np.zeros((0, 2), np.float32), last=True)).T)
        estimates = torch.cat([estimates, self.engine.finish()], dim=2)
        parts = [*self.pairing.add_estimates(self.from_model(_interleave(estimates), last=True)), *self.pairing.flush()]
        return self._collect(iter(parts))

    def held_frames(self) -> int:
        """Frames held in the buffers (model input, blend sums, mixture awaiting its estimates): what a long
        stream must not grow. soxr's own state is fixed by its filter."""
        engine = self.engine
        return engine.inputs.shape[-1] + engine.sums.shape[-1] + self.pairing.waiting

    def _collect(self, parts: Iterator[Blocks]) -> Blocks:
        parts = list(parts)
        if len(parts) == 1:
            return parts[0]
        empty = np.zeros((0, self.channels), np.float32)
        return {stem: np.concatenate([empty, *(p[stem] for p in parts)]) for stem in self.stems}


def _interleave(estimates: Tensor) -> np.ndarray:
    """``[stems, 2, n]`` → ``[n, stems * 2]``: one multichannel stream for the resampler."""
    return estimates.reshape(estimates.shape[0] * estimates.shape[1], estimates.shape[-1]).T.contiguous().numpy()


class _Pairing:
    """Pairs estimates (which come out later) with the mixture samples they belong to, so that the complement
    (accompaniment = mixture − vocals) can be formed and the output has the input's exact length."""

    def __init__(self, model_stems: list[str], channels: int):
        self.model_stems = list(model_stems)
        self.complement = can_complement(model_stems)
        self.channels = channels
        self.mixture: deque[np.ndarray] = deque()
        self.waiting = 0  # mixture frames not yet paired

    def add_mixture(self, block: np.ndarray) -> None:
        self.mixture.append(block)
        self.waiting += block.shape[0]

    def add_estimates(self, interleaved: np.ndarray) -> Iterator[Blocks]:
        """``[n, stems * 2]`` estimates at the input's rate."""
        interleaved = interleaved[: self.waiting]  # resampling may round up by a sample at the very end
        if not interleaved.shape[0]:
            return
        out: Blocks = {}
        for index, stem in enumerate(self.model_stems):
            stereo = interleaved[:, 2 * index : 2 * index + 2]
            out[stem] = np.ascontiguousarray(stereo.mean(axis=1, keepdims=True) if self.channels == 1 else stereo, np.float32)
        if self.complement:
            mixture = self._take(interleaved.shape[0])
            out[ACCOMPANIMENT] = mixture - out["vocals"]
        else:
            self._take(interleaved.shape[0])
        yield out

    def flush(self) -> Iterator[Blocks]:
        """Resampling may also round down by a sample: the missing end is silence in the estimates."""
        if self.waiting:
            yield from self.add_estimates(np.zeros((self.waiting, 2 * len(self.model_stems)), np.float32))

    def _take(self, count: int) -> np.ndarray:
        parts = []
        while count:
            head = self.mixture[0]
            if head.shape[0] <= count:
                parts.append(self.mixture.popleft())
            else:
                parts.append(head[:count])
                self.mixture[0] = head[count:]
            count -= parts[-1].shape[0]
            self.waiting -= parts[-1].shape[0]
        return np.concatenate(parts)


def _separate_like_authors(
    model, blocks: Iterable[np.ndarray], sample_rate: int, channels: int, progress: Optional[Progress]
) -> Iterator[Blocks]:
    """The original procedure needs the whole track at once (it pads the track, not a stream)."""
    from ..reproduce import separate_like_authors

    parts = []
    for block in blocks:
        parts.append(block)
        if progress is not None:
            progress(block.shape[0])
    mixture = np.concatenate(parts)
    stereo = mixture if channels == 2 else np.repeat(mixture, 2, axis=1)
    at_model_rate = StreamResampler(sample_rate, model.sample_rate, 2)(stereo, last=True)
    with torch.inference_mode():
        estimates = separate_like_authors(model, torch.from_numpy(at_model_rate.T.copy())).to("cpu", torch.float32)
    pairing = _Pairing(model.stems, channels)
    pairing.add_mixture(mixture)
    back = StreamResampler(model.sample_rate, sample_rate, 2 * len(model.stems))
    yield from pairing.add_estimates(back(_interleave(estimates), last=True))
    yield from pairing.flush()
