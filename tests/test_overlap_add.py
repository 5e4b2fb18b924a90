"""Overlap-add against its definition, written again here in numpy from the formula, with a stand-in model whose
overlapping segments disagree, so that every blending weight shows in the result.

The definition (README, "Overlap-add"; `zoo_core.chunking`'s docstring): demucs' ``apply_model`` blends segments
with weights normalised by their sum; svs-zoo's weights are linear ramps over the overlap instead of a triangle
over the whole segment. Segments of ``segment`` samples start every ``segment - overlap`` samples until one reaches
the end of the track (the last may be shorter). Sample ``n`` of a segment of ``L`` samples has the weight

    w(n) = min(1, (n + 1) / (overlap + 1), (L - n) / (overlap + 1))

so that where two segments overlap the falling and the rising ramp sum to exactly 1, and no weight is 0 (the
track's first and last samples are covered too). The output is ``sum_k w_k y_k / sum_k w_k``. Nothing from
`zoo_core.chunking` is used to build the expected values.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from zoo_core.export.artifact import SeparatorArtifact
from zoo_core.separation import OverlapAdd, separate


def respond(segment: np.ndarray) -> np.ndarray:
    """The stand-in model in float64: ``[batch, 2, L]`` → ``[batch, 2 stems, 2, L]``. Nonlinear in the input and
    dependent on where a sample sits in its segment and on the segment's mean, so that two segments covering the
    same sample give different values there."""
    length = segment.shape[-1]
    position = np.arange(length) / length
    mean = segment.mean(axis=(1, 2), keepdims=True)
    first = np.tanh(1.5 * segment) * (1.0 + 0.5 * np.cos(np.pi * position)) + 0.2 * mean
    second = segment**2 - position + np.sin(3.0 * segment[:, ::-1])  # channels swapped: stems are not alike
    return np.stack([first, second], axis=1)


class StandIn(nn.Module):
    """`respond` as a model the engine can call (it needs ``stems``; `separate` also the rate, hop and window)."""

    sample_rate = 44100
    hop_length = 1  # segments and overlaps in whole samples
    stems = ["vocals", "other"]

    def training_segment(self) -> int:
        return 4096

    def forward(self, mixture: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(respond(mixture.double().numpy())).float()


class VocalStandIn(StandIn):
    """A vocal model: separation adds accompaniment = mixture − vocals."""

    stems = ["vocals"]

    def forward(self, mixture: torch.Tensor) -> torch.Tensor:
        return super().forward(mixture)[:, :1]


def by_definition(mixture: np.ndarray, segment: int, overlap: int, stems: int = 2) -> np.ndarray:
    """The blended estimate ``[stems, 2, N]`` of ``mixture`` ``[2, N]``, from the formula in the module docstring."""
    total = mixture.shape[-1]
    stride = segment - overlap
    sums = np.zeros((stems, 2, total))
    weight_sums = np.zeros(total)
    start = 0
    while True:
        piece = mixture[:, start : start + segment].astype(np.float64)
        length = piece.shape[-1]
        n = np.arange(length)
        weights = np.minimum(1.0, np.minimum((n + 1) / (overlap + 1), (length - n) / (overlap + 1)))
        sums[..., start : start + length] += respond(piece[None])[0, :stems] * weights
        weight_sums[start : start + length] += weights
        if start + segment >= total:
            break
        start += stride
    return sums / weight_sums


def mixture_of(total: int, seed: int) -> np.ndarray:
    return (0.5 * np.random.default_rng(seed).standard_normal((2, total))).astype(np.float32)


# (segment, overlap, total samples, segments per model call, block size pushed): a track shorter than a segment,
# no overlap, the usual quarter, three quarters (MDX23C's default), a last segment just over the overlap
CASES = [
    (4096, 1024, 3000, 1, 3000),
    (3000, 0, 7001, 1, 7001),
    (4096, 1024, 20_000, 1, 777),
    (4096, 1024, 20_000, 3, 5000),
    (4096, 3072, 15_000, 2, 1000),
    (2048, 1024, 2048 + 1024 + 1025, 1, 64),
]


@pytest.mark.parametrize("segment, overlap, total, batch, block", CASES)
def test_streaming_engine_equals_the_definition(segment, overlap, total, batch, block):
    mixture = mixture_of(total, seed=total)
    expected = by_definition(mixture, segment, overlap)
    engine = OverlapAdd(StandIn(), segment, overlap, batch)
    source = torch.from_numpy(mixture)
    pieces = [engine.push(source[:, i : i + block]) for i in range(0, total, block)]
    blended = torch.cat([*pieces, engine.finish()], dim=2).double().numpy()
    assert blended.shape == expected.shape
    # float32 accumulation of O(1) values: about 1e-7; a wrong ramp or start moves samples by 1e-2 or more
    assert np.abs(blended - expected).max() <= 1e-5


@pytest.mark.parametrize("segment, overlap, total, batch, block", CASES)
def test_exported_chunked_method_equals_the_definition(segment, overlap, total, batch, block):
    """`SeparatorArtifact.separate_chunked`, the blend of the TorchScript file and of the C++ host that calls it."""
    mixture = mixture_of(total, seed=total + 1)
    artifact = SeparatorArtifact(StandIn(), segment, overlap)
    with torch.inference_mode():
        blended = artifact.separate_chunked(torch.from_numpy(mixture)[None], segment, overlap, batch)[0]
    assert np.abs(blended.double().numpy() - by_definition(mixture, segment, overlap)).max() <= 1e-5


def test_separate_gives_the_blend_and_accompaniment_is_mixture_minus_vocals():
    """The public API at the model's rate: vocals by the definition, accompaniment = mixture − vocals (MUSDB's
    accompaniment is the sum of the other sources, and a vocal model's estimates sum to the mixture)."""
    mixture = mixture_of(10_000, seed=3)
    estimates = separate(VocalStandIn(), torch.from_numpy(mixture), 44100, segment=4096 / 44100, overlap=0.25)
    vocals = by_definition(mixture, 4096, 1024, stems=1)[0]
    assert set(estimates) == {"vocals", "accompaniment"}
    assert np.abs(estimates["vocals"].double().numpy() - vocals).max() <= 1e-5
    assert np.abs(estimates["accompaniment"].double().numpy() - (mixture - vocals)).max() <= 1e-5
    with torch.inference_mode():
        exported = SeparatorArtifact(VocalStandIn(), 4096, 1024).separate_chunked(torch.from_numpy(mixture)[None], 4096, 1024, 1)
    assert exported.shape == (1, 2, 2, 10_000)
    assert np.abs(exported[0, 1].double().numpy() - (mixture - vocals)).max() <= 1e-5


def test_the_stand_in_makes_overlapping_segments_disagree():
    """Otherwise any weights would pass: the two segments over an overlap differ by far more than the tolerance."""
    mixture = mixture_of(6144, seed=4)
    early = respond(mixture[None, :, :4096].astype(np.float64))[0, :, :, 2048:]
    late = respond(mixture[None, :, 2048:].astype(np.float64))[0, :, :, :2048]
    assert np.abs(early - late).mean() > 0.1
