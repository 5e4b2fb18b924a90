"""An ensemble as one model: its members separate the same blocks side by side and a rule combines their
estimates of every stem they have in common (`zoo_core.ensemble.rules`).

Members may differ in STFT, stems and sample rate: each runs through its own overlap-add engine
(`zoo_core.separation.BlockSeparator`, which resamples to the member's rate and back), so every member's
estimates arrive at the input's rate and length; they are combined there. Stems are matched by name, with an
``instrumental`` stem standing for ``accompaniment``: a member with vocals (a four-stem one) gives accompaniment
= mixture − vocals, a vocals/instrumental member its own instrumental.

Memory stays flat: the members advance together on the same input blocks and each member's estimates wait in a
queue only until every member has produced those samples (at most the longest member's segment), then the
combined block goes out. The spectral rules add one STFT frame of delay (`zoo_core.ensemble.spectral`).
"""

from __future__ import annotations

import hashlib
from collections import deque
from typing import Mapping, Sequence, Union

import numpy as np

from ..errors import ZooError
from ..provenance import WeightsProvenance
from ..stems import ACCOMPANIMENT, available_stems
from .rules import SPECTRAL, check_rule, combine
from .spectral import DEFAULT_HOP, DEFAULT_N_FFT, SpectralCombiner

INSTRUMENTAL = "instrumental"
Weights = Union[None, Sequence[float], Mapping[str, Sequence[float]]]


def stem_mapping(model_stems: Sequence[str]) -> dict[str, str]:
    """Ensemble stem name → the name a member with ``model_stems`` gives it under."""
    mapping = {stem: stem for stem in available_stems(model_stems)}
    if INSTRUMENTAL in model_stems and ACCOMPANIMENT not in model_stems:
        mapping.pop(INSTRUMENTAL)
        mapping[ACCOMPANIMENT] = INSTRUMENTAL  # its own estimate, not mixture - vocals
    return mapping


class Ensemble:
    """Members (loaded models, or nested ensembles) combined by ``rule``. ``weights``: one per member, or per
    stem ``{stem: [one per member]}`` (a fitted ensemble); None: equal. ``label`` is its name (`names`)."""

    def __init__(self, members: list, rule: str, weights: Weights = None, label: str = "", folder: str = ""):
        from ..separation import model_label

        if len(members) < 2:
            raise ZooError("an ensemble needs at least two members")
        self.members = members
        self.rule = check_rule(rule)
        self.mappings = [stem_mapping(m.stems) for m in members]
        common = [s for s in self.mappings[0] if all(s in other for other in self.mappings[1:])]
        if not common:
            raise ZooError(f"the members of {label or 'this ensemble'} have no stem in common "
                           f"({'; '.join(', '.join(m) for m in self.mappings)})")
        self.stems = common
        self.weights = self._weights(weights)
        self.member_labels = [model_label(m) for m in members]
        self.zoo_label = label or f"{rule}({', '.join(self.member_labels)})"
        self.zoo_folder = folder or self.zoo_label
        first = members[0]
        # what the engine's shared code reads of a model: the first member's rate and framing (the manifest's
        # segment figure); each member cuts its own segments
        self.sample_rate, self.hop_length = first.sample_rate, first.hop_length
        self.stft = self._shared_stft()
        digest = hashlib.sha256()
        for member in members:
            digest.update(str(member.provenance.sha256 if member.provenance is not None else None).encode())
        # every member's weights, in order: what the manifest's settings record of an ensemble
        self.provenance = WeightsProvenance(self.zoo_label, sha256=digest.hexdigest())
        self.entry_name = self.zoo_label

    def _weights(self, weights: Weights) -> dict[str, np.ndarray]:
        count = len(self.members)
        if weights is None or isinstance(weights, Mapping):
            given = dict(weights or {})
            unknown = [s for s in given if s not in self.stems]
            if unknown:
                raise ZooError(f"weights for {unknown[0]!r}, which is not a common stem ({', '.join(self.stems)})")
            table = {stem: given.get(stem, [1.0] * count) for stem in self.stems}
        else:
            table = {stem: list(weights) for stem in self.stems}
        for stem, row in table.items():
            if len(row) != count:
                raise ZooError(f"{len(row)} weights for {count} members ({stem})")
            if any(not w >= 0 for w in row) or not sum(row) > 0:
                raise ZooError(f"weights must be non-negative and not all zero ({stem}: {row})")
        return {stem: np.asarray(row, np.float64) for stem, row in table.items()}

    def _shared_stft(self) -> tuple[int, int]:
        """(n_fft, hop) of the spectral rules: the members' own when they all share one, else MSST's 2048/1024."""
        shapes = {(getattr(m, "n_fft", None), getattr(m, "hop_length", None), m.sample_rate) for m in self.members}
        if len(shapes) == 1:
            n_fft, hop, _ = shapes.pop()
            if isinstance(n_fft, int) and isinstance(hop, int):
                return n_fft, hop
        return DEFAULT_N_FFT, DEFAULT_HOP

    @property
    def added_latency(self) -> int:
        """Frames a stream waits beyond the slowest member: a spectral rule needs a whole STFT frame."""
        return self.stft[0] - 1 if self.rule in SPECTRAL else 0

    # what `zoo_core.separation` asks of a model
    def training_segment(self) -> int:
        return self.members[0].training_segment()

    def parameters(self):
        for member in self.members:
            yield from member.parameters()

    def block_separator(self, sample_rate: int, channels: int, options) -> "EnsembleSeparator":
        return EnsembleSeparator(self, sample_rate, channels, options)

    def ensemble_settings(self) -> dict:
        """The manifest's record of what made the outputs."""
        weights = {stem: [round(float(w), 6) for w in row] for stem, row in self.weights.items()}
        return {"rule": self.rule, "members": self.member_labels, "weights": weights,
                **({"stft": list(self.stft)} if self.rule in SPECTRAL else {})}


class _Queue:
    """One member's estimates not yet combined: ``{stem: [frames, channels]}`` blocks in order."""

    def __init__(self, mapping: dict[str, str], stems: list[str], channels: int):
        self.mapping, self.stems, self.channels = mapping, stems, channels
        self.blocks: deque[dict[str, np.ndarray]] = deque()
        self.frames = 0

    def add(self, estimates: dict[str, np.ndarray]) -> None:
        block = {stem: estimates[self.mapping[stem]] for stem in self.stems}
        count = next(iter(block.values())).shape[0]
        if count:
            self.blocks.append(block)
            self.frames += count

    def take(self, count: int) -> dict[str, np.ndarray]:
        parts: list[dict[str, np.ndarray]] = []
        while count:
            head = self.blocks[0]
            size = next(iter(head.values())).shape[0]
            if size <= count:
                parts.append(self.blocks.popleft())
            else:
                parts.append({s: a[:count] for s, a in head.items()})
                self.blocks[0] = {s: a[count:] for s, a in head.items()}
                size = count
            count -= size
            self.frames -= size
        empty = np.zeros((0, self.channels), np.float32)
        return {stem: np.concatenate([empty, *(p[stem] for p in parts)]) for stem in self.stems}


class EnsembleSeparator:
    """`zoo_core.separation.BlockSeparator`'s contract for an ensemble: `push` ``[frames, channels]`` blocks, get
    ``{stem: [m, channels]}`` of the samples that are final in every member."""

    def __init__(self, ensemble: Ensemble, sample_rate: int, channels: int, options):
        from ..separation.engine import block_separator

        if options.method != "overlap-add":
            raise ZooError("an ensemble separates with overlap-add; --method authors runs one model alone")
        self.ensemble = ensemble
        self.channels = channels
        self.stems = list(ensemble.stems)
        self.parts = [block_separator(m, sample_rate, channels, options) for m in ensemble.members]
        self.queues = [_Queue(mapping, self.stems, channels) for mapping in ensemble.mappings]
        self.spectral = None
        if ensemble.rule in SPECTRAL:
            rows = [np.repeat(ensemble.weights[stem][:, None], channels, axis=1) for stem in self.stems]
            self.spectral = SpectralCombiner(ensemble.rule, np.concatenate(rows, axis=1), *ensemble.stft)

    def push(self, block: np.ndarray) -> dict[str, np.ndarray]:
        for part, queue in zip(self.parts, self.queues):
            queue.add(part.push(block))
        return self._combine(last=False)

    def finish(self) -> dict[str, np.ndarray]:
        for part, queue in zip(self.parts, self.queues):
            queue.add(part.finish())
        return self._combine(last=True)

    def held_frames(self) -> int:
        return sum(p.held_frames() for p in self.parts) + sum(q.frames for q in self.queues)

    def _combine(self, last: bool) -> dict[str, np.ndarray]:
        ready = min(q.frames for q in self.queues)
        taken = [q.take(ready) for q in self.queues]
        if self.spectral is None:
            return {stem: combine(self.ensemble.rule, np.stack([t[stem] for t in taken]), self.ensemble.weights[stem])
                    .astype(np.float32) for stem in self.stems}
        # [members, stems * channels, frames]: one signal per stem and channel
        stack = np.stack([np.concatenate([t[stem].T for stem in self.stems]) for t in taken])
        signals = self.spectral.push(stack)
        if last:
            signals = np.concatenate([signals, self.spectral.finish()], axis=1)
        c = self.channels
        return {stem: np.ascontiguousarray(signals[i * c : (i + 1) * c].T) for i, stem in enumerate(self.stems)}
