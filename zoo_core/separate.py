"""Separating real recordings: a streaming overlap-add engine, the `separate` tensor API and `separate_file`.

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

``python -m zoo_core.separate`` is `zoo separate` (with ``--distributed`` under torchrun).

``method="authors"`` instead runs `zoo_core.reproduce.separate_like_authors` (the original chunk-and-trim
procedure of the ISMIR 2020 code) on the whole track: the path that reproduces the paper's numbers.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from .audio import AtomicWriter, StreamResampler, check_input_path, open_audio, subtype_for, track_name
from .chunking import DEFAULT_OVERLAP, overlap_weights, segment_starts
from .errors import ZooError
from .stems import ACCOMPANIMENT, available_stems, can_complement, output_stems

DEFAULT_MODEL = "tdc-17"  # the one model whose paper weights are reachable offline (ZOO_WEIGHTS_MIRROR)
DEFAULT_BATCH_SIZE = 1  # on CPU a batch of one is fastest and smallest; raise it on a GPU
METHODS = ("overlap-add", "authors")

Progress = Callable[[int], None]  # called with the number of input samples just consumed
Blocks = dict[str, np.ndarray]  # stem -> [frames, channels] float32


@dataclass(frozen=True)
class SeparationOptions:
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
        README for the measured difference). A segment shorter than two hops is refused."""
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
    options: SeparationOptions = SeparationOptions(),
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


def block_separator(model, sample_rate: int, channels: int, options: SeparationOptions = SeparationOptions()):
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

    def __init__(self, model, sample_rate: int, channels: int, options: SeparationOptions = SeparationOptions()):
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
    from .reproduce import separate_like_authors

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


def separate(
    model,
    waveform: Tensor,
    sample_rate: int,
    *,
    segment: Optional[float] = None,
    overlap: Optional[float] = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    method: str = "overlap-add",
) -> dict[str, Tensor]:
    """Separate a waveform held in memory.

    Args:
        model: a `SeparationModel` (or its TorchScript module), already on its device and in eval mode.
        waveform: ``[channels, samples]`` or ``[batch, channels, samples]``, mono or stereo, any length.
        sample_rate: the waveform's rate; other rates than the model's are resampled there and back.
        segment: segment length in seconds (default: the model's training window).
        overlap: fraction of a segment shared with the next one (linear cross-fade); None: the model's default.
        batch_size: segments per model call.
        method: ``"overlap-add"`` (default) or ``"authors"`` (the original ISMIR 2020 chunk-and-trim).

    Returns:
        ``{stem: waveform}`` for every stem of ``output_stems(model.stems)`` (``{"vocals", "accompaniment"}`` for
        the paper's models): float32 CPU tensors with the input's shape and rate; accompaniment = mixture − vocals.

    Example::

        model = zoo_core.load_model("tdc-17")
        stems = separate(model, torch.randn(2, 44100 * 5), 44100)
    """
    options = SeparationOptions(segment=segment, overlap=overlap, batch_size=batch_size, method=method)
    options.validate()
    if waveform.dim() not in (2, 3):
        raise ZooError(f"waveform must be [channels, samples] or [batch, channels, samples], got {list(waveform.shape)}")
    batched = waveform if waveform.dim() == 3 else waveform.unsqueeze(0)
    if batched.shape[-1] == 0:
        raise ZooError("waveform has no samples")
    if batched.shape[1] not in (1, 2):
        raise ZooError(f"{batched.shape[1]} channels; only mono and stereo are supported")
    if not torch.isfinite(batched).all():
        raise ZooError("waveform contains NaN or infinite samples")
    names = output_stems(model.stems)
    results: dict[str, list[Tensor]] = {stem: [] for stem in names}
    for item in batched:
        mixture = item.detach().to("cpu", torch.float32).T.contiguous().numpy()
        pieces = list(separate_blocks(model, [mixture], sample_rate, item.shape[0], options))
        for stem in names:
            results[stem].append(torch.from_numpy(np.concatenate([p[stem] for p in pieces]).T.copy()))
    return {stem: torch.stack(parts) if waveform.dim() == 3 else parts[0] for stem, parts in results.items()}


@dataclass
class FileResult:
    """What `separate_file` wrote."""

    input: Path
    track: str
    outputs: dict[str, Path]
    sample_rate: int
    channels: int
    frames: int
    seconds: float
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "input": str(self.input),
            "track": self.track,
            "outputs": {stem: str(path) for stem, path in self.outputs.items()},
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "frames": self.frames,
            "seconds": round(self.seconds, 3),
            "warnings": self.warnings,
        }


def model_folder(model) -> str:
    """The output folder of a model: ``<model>_<variant>`` of the weights it holds (``tdc-17_top1``), its
    registry name for initialised parameters, ``model`` for anything else; an ensemble's or an augmented model's
    own (`zoo_core.ensemble.names.folder_name`). One rule for every command."""
    if getattr(model, "zoo_folder", None):
        return model.zoo_folder
    info = getattr(model, "weights_info", None) or {}
    if info.get("model"):
        name = f"{info['model']}_{info['variant']}" if info.get("variant") else str(info["model"])
    else:
        name = str(getattr(model, "entry_name", "") or "model")
    return name.replace(":", "_")  # a colon is not portable in a file name


def model_label(model) -> str:
    """``<model>:<variant>`` of the weights a model holds (``tdc-17:top1``), as the manifest records it; an
    ensemble's or an augmented model's name (``avg-wave(tdc-17:top1, tdc-17:top2)``, ``tta(tdc-17:top1)``)."""
    if getattr(model, "zoo_label", None):
        return model.zoo_label
    info = getattr(model, "weights_info", None) or {}
    if info.get("model"):
        return f"{info['model']}:{info['variant']}" if info.get("variant") else str(info["model"])
    return str(getattr(model, "entry_name", "") or "model")


def choose_stems(model, stems: Optional[Sequence[str]]) -> list[str]:
    """The stems to write: the default ones (`output_stems`), or those named, in the model's order, of every
    stem it can give (`available_stems`: also the accompaniment of a multi-stem model); unknown names are an
    error."""
    available = available_stems(model.stems)
    if not stems:
        return output_stems(model.stems)
    unknown = [stem for stem in stems if stem not in available]
    if unknown:
        raise ZooError(f"no stem {unknown[0]!r} in this model (it gives {', '.join(available)})")
    return [stem for stem in available if stem in stems]


def output_paths(out_dir: Path, model, path: Path, stems: Sequence[str], format: str = "wav") -> dict[str, Path]:
    """``<out>/<model_folder>/<track>/<stem>.<format>``."""
    folder = Path(out_dir) / model_folder(model) / track_name(Path(path))
    return {stem: folder / f"{stem}.{format}" for stem in stems}


def separate_file(
    model,
    path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    options: SeparationOptions = SeparationOptions(),
    stems: Optional[Sequence[str]] = None,
    format: str = "wav",
    bits: Optional[str] = None,
    force: bool = False,
    on_start: Optional[Callable[[int], None]] = None,
    progress: Optional[Progress] = None,
) -> FileResult:
    """Separate one file into ``<out_dir>/<model_folder>/<track>/<stem>.<format>``, one file per stem (all of
    them, or those named in ``stems``).

    The file is decoded, resampled, separated and written block by block (flat memory for any length); the
    outputs have the input's rate, channel count and length, and appear only once complete (temporary names,
    then a rename). Existing outputs are an error unless ``force``. ``on_start`` receives the declared number
    of frames and the sample rate, ``progress`` the frames consumed so far, block by block. Raises `ZooError`
    for bad input.
    """
    path = Path(path)
    subtype = subtype_for(format, bits)
    options.validate()
    chosen = choose_stems(model, stems)
    check_input_path(path)
    outputs = output_paths(Path(out_dir), model, path, chosen, format)
    existing = [str(p) for p in outputs.values() if p.exists()]
    if existing and not force:
        raise ZooError(f"{existing[0]} exists; pass --force to overwrite")
    started = time.perf_counter()
    reader = open_audio(path)
    if on_start is not None:
        on_start(reader.frames, reader.sample_rate)
    writers: dict[str, AtomicWriter] = {}
    frames = 0
    try:
        for stem in chosen:
            writers[stem] = AtomicWriter(outputs[stem], reader.sample_rate, reader.channels, format, subtype)
        for blocks in separate_blocks(model, reader.blocks(), reader.sample_rate, reader.channels, options, progress):
            for stem, writer in writers.items():
                writer.write(blocks[stem])
            frames += next(iter(blocks.values())).shape[0]
        committed: list[Path] = []
        try:
            for writer in writers.values():
                writer.commit()
                committed.append(writer.path)
        except BaseException:  # all stems or none: a kill between two renames must not leave half a set
            for done in committed:
                done.unlink(missing_ok=True)
            raise
        warnings = [
            f"{writer.path}: {writer.clipped} samples beyond ±1 were clipped by the {bits or '24'}-bit format; "
            "use --bits float (WAV) to keep them"
            for writer in writers.values()
            if writer.clipped
        ]
    except BaseException as exc:
        for writer in reversed(list(writers.values())):  # the first one made the folders: it goes last
            writer.discard()
        if isinstance(exc, OSError):  # a full disk, a folder we may not write to
            raise ZooError(f"{path}: cannot write the outputs ({exc})", exit_code=1) from None
        raise
    return FileResult(
        path, track_name(path), outputs, reader.sample_rate, reader.channels, frames, time.perf_counter() - started,
        warnings,
    )


if __name__ == "__main__":  # python -m zoo_core.separate: `zoo separate`, sharing the inputs under torchrun
    import sys

    from zoo_core.cli import run_command

    arguments = sys.argv[1:]
    if "WORLD_SIZE" in os.environ and "--distributed" not in arguments:
        arguments.append("--distributed")
    run_command("separate", arguments, prog_name="python -m zoo_core.separate")
