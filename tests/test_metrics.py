"""The fast SDR is museval v4's SDR: same values (1e-9 dB), same NaN and inf frames, same length handling."""

from __future__ import annotations

import museval  # a dependency of svs-zoo: a missing or renamed museval must fail here, not skip
import numpy as np
import pytest

from zoo_core.audio import read_stems
from zoo_core.metrics import frame_count, sdr


@pytest.fixture(scope="module")
def clip(clip_path):
    stems, _ = read_stems(clip_path)
    vocals = stems["vocals"].T.astype(np.float64)
    accompaniment = (stems["drums"] + stems["bass"] + stems["other"]).T.astype(np.float64)
    mixture = stems["mixture"].T.astype(np.float64)
    # an imperfect, non-trivial estimate: a scaled mixture with some noise
    estimate = 0.55 * mixture + 0.01 * np.random.default_rng(0).standard_normal(mixture.shape)
    return vocals, accompaniment, mixture, estimate


def _assert_same(references, estimates, **window):
    expected = museval.evaluate(references, estimates, **window)[0]
    actual = sdr(references, estimates, window.get("win", 44100), window.get("hop", 44100))
    assert actual.shape == expected.shape
    assert np.array_equal(np.isnan(actual), np.isnan(expected))
    assert np.array_equal(np.isposinf(actual), np.isposinf(expected))
    finite = np.isfinite(expected)
    assert np.abs(actual[finite] - expected[finite]).max(initial=0) <= 1e-9
    return actual


def test_equals_museval_on_real_audio(clip):
    vocals, accompaniment, mixture, estimate = clip
    values = _assert_same([vocals, accompaniment], [estimate, mixture - estimate])
    assert values.shape == (2, 6) and np.isfinite(values).all()  # 6.08 s: the partial 7th second is dropped
    _assert_same([vocals], [estimate], win=44100, hop=22050)  # overlapping frames


def test_silent_frames_are_nan_for_every_target(clip):
    vocals, accompaniment, mixture, estimate = clip
    silent_estimate = estimate.copy()
    silent_estimate[44100:88200] = 0  # an estimate silent in frame 1
    silent_reference = vocals.copy()
    silent_reference[3 * 44100 : 4 * 44100] = 0  # a reference silent in frame 3
    values = _assert_same([silent_reference, accompaniment], [silent_estimate, mixture - silent_estimate])
    assert np.isnan(values[:, [1, 3]]).all() and not np.isnan(values[:, [0, 2, 4, 5]]).any()
    # channels that cancel count as silence for museval (it sums the channels)
    cancelling = estimate.copy()
    cancelling[:44100, 1] = -cancelling[:44100, 0]
    assert np.isnan(_assert_same([vocals], [cancelling])[0, 0])


def test_perfect_frame_is_inf(clip):
    vocals, _, _, estimate = clip
    perfect_start = estimate.copy()
    perfect_start[:44100] = vocals[:44100]
    assert _assert_same([vocals], [perfect_start])[0, 0] == np.inf


def test_length_mismatch_pads_or_cuts_the_estimate(clip):
    vocals, accompaniment, mixture, estimate = clip
    short = _assert_same([vocals, accompaniment], [estimate[:200_000], (mixture - estimate)[:200_000]])
    assert np.isnan(short[:, 5]).all()  # the padded zeros make the last frame silent
    long = np.pad(estimate, ((0, 5000), (0, 0)))
    _assert_same([vocals], [long])
    _assert_same([vocals[:30_000]], [estimate[:30_000]])  # shorter than one window: one frame


def test_a_silent_signal_is_an_error_as_in_museval(clip):
    vocals, _, _, _ = clip
    with pytest.raises(ValueError):
        museval.evaluate([vocals], [np.zeros_like(vocals)])
    with pytest.raises(ValueError, match="silent over the whole signal"):
        sdr([vocals], [np.zeros_like(vocals)])


def test_frame_count_follows_museval():
    assert frame_count(268_288, 44100, 44100) == 6
    assert frame_count(44100, 44100, 44100) == 1
    assert frame_count(100, 44100, 44100) == 1
    assert frame_count(88200, 44100, 22050) == 3
