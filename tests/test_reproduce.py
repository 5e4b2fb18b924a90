"""The authors' released TDC-17 checkpoints, run the authors' way, give the authors' own SDR on the real clip."""

from __future__ import annotations

import museval
import numpy as np
import pytest
import torch

from zoo_core import create_model
from zoo_core.audio import read_stems
from zoo_core.errors import ZooError
from zoo_core.reproduce import separate_like_authors
from zoo_core.weights import load_model

# median vocal SDR of the authors' own code on this clip, sum-of-stems mixture (original-reference-run.md)
AUTHORS_SDR = {"top1": 2.0075, "top2": 1.7956, "top3": 2.3491}


@pytest.fixture(scope="module")
def clip(clip_path) -> tuple[torch.Tensor, np.ndarray]:
    """(sum-of-stems mixture [2, N], vocals [2, N]) of the real clip."""
    stems, _ = read_stems(clip_path)
    return torch.from_numpy(stems["drums"] + stems["bass"] + stems["other"] + stems["vocals"]), stems["vocals"]


@pytest.fixture
def mirror(weights_mirror, monkeypatch):
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(weights_mirror))
    return weights_mirror


@pytest.mark.parametrize("variant", sorted(AUTHORS_SDR))
def test_released_tdc17_weights_load_strictly_and_unchanged(mirror, variant):
    model = load_model(f"tdc-17:{variant}")
    original = torch.load(mirror / f"cac_tdc_17_vocals_{variant}.pt", map_location="cpu", weights_only=True)
    state = model.unet.state_dict()
    assert set(state) == set(original)
    for key, value in original.items():
        assert value.dtype == state[key].dtype and torch.equal(state[key], value), key


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(AUTHORS_SDR))
def test_authors_procedure_reproduces_their_sdr(mirror, clip, variant):
    mixture, vocals = clip
    model = load_model("tdc-17", variant)

    estimate = separate_like_authors(model, mixture)

    assert estimate.shape == (1, *mixture.shape) and estimate.dtype == torch.float32
    sdr = museval.evaluate(
        vocals.T[None].astype(np.float64), estimate[0].numpy().T[None].astype(np.float64), win=44100, hop=44100
    )[0]
    assert np.nanmedian(sdr) == pytest.approx(AUTHORS_SDR[variant], abs=0.01)


def test_chunking_without_a_network_gives_the_mixture_back(clip):
    """With the U-Net bypassed, chunking, trimming and stitching must reconstruct the signal."""
    mixture, _ = clip
    model = create_model("tdc-17")
    model.core = lambda image: image.unsqueeze(1)  # the network bypassed: the mixture's image as the estimate
    for signal in (mixture, mixture[:, :56560], mixture[:, :1000]):  # a full useful chunk exactly, a short one
        restored = separate_like_authors(model, signal, batch_size=2)
        assert restored.shape == (1, *signal.shape)
        torch.testing.assert_close(restored[0], signal, atol=1e-5, rtol=0)


def test_bad_input_is_one_line_errors():
    model = create_model("tdc-17")
    with pytest.raises(ZooError, match=r"stereo tensor \[2, samples\]"):
        separate_like_authors(model, torch.zeros(1000))
    with pytest.raises(ZooError, match="floating point"):
        separate_like_authors(model, torch.zeros(2, 1000, dtype=torch.int16))
    with pytest.raises(ZooError, match="trim must be in 0..33279"):
        separate_like_authors(model, torch.zeros(2, 1000), trim=40000)
    with pytest.raises(ZooError, match="batch_size"):
        separate_like_authors(model, torch.zeros(2, 1000), batch_size=0)
