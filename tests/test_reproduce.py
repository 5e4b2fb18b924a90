"""The authors' released TDC-17 checkpoints, run the authors' way, give the authors' own SDR on the real clip."""

from __future__ import annotations

import json

import museval
import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

import zoo_core
from zoo_core.audio import read_stems
from zoo_core.cli import main
from zoo_core.errors import ZooError
from zoo_core.reproduce import separate_like_authors
import zoo_core

# the authors' own code on this clip (original-reference-run.md), museval v4, 1-s frames: median vocal SDR with
# the sum-of-stems mixture, given to 4 decimals; top1's six per-frame SDRs, to 3 decimals; top1's median with the
# decoded stream-0 mixture
AUTHORS_SDR = {"top1": 2.0075, "top2": 1.7956, "top3": 2.3491}
AUTHORS_TOP1_FRAMES = [4.264, 0.280, -12.450, -12.089, 3.735, 3.986]
AUTHORS_TOP1_STREAM0_SDR = 1.9342
ROUNDING = {4: 0.5e-4 + 1e-6, 3: 0.5e-3 + 1e-6}  # half the last published digit, plus float noise


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
    model = zoo_core.load(f"tdc-17:{variant}")
    original = torch.load(mirror / f"cac_tdc_17_vocals_{variant}.pt", map_location="cpu", weights_only=True)
    state = model.network.state_dict()
    assert set(state) == set(original)
    for key, value in original.items():
        assert value.dtype == state[key].dtype and torch.equal(state[key], value), key


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(AUTHORS_SDR))
def test_authors_procedure_reproduces_their_sdr(mirror, clip, variant):
    mixture, vocals = clip
    model = zoo_core.load("tdc-17", variant=variant)

    estimate = separate_like_authors(model, mixture)

    assert estimate.shape == (1, *mixture.shape) and estimate.dtype == torch.float32
    sdr = museval.evaluate(
        vocals.T[None].astype(np.float64), estimate[0].numpy().T[None].astype(np.float64), win=44100, hop=44100
    )[0][0]
    assert sdr.shape == (6,)
    assert np.nanmedian(sdr) == pytest.approx(AUTHORS_SDR[variant], abs=ROUNDING[4])
    if variant == "top1":  # the per-frame values the reference gives
        np.testing.assert_allclose(sdr, AUTHORS_TOP1_FRAMES, rtol=0, atol=ROUNDING[3])


@pytest.mark.slow
def test_cli_separate_and_eval_with_the_authors_method_give_the_authors_figure(mirror, clip_path, tmp_path):
    """Through the command line: the authors' procedure on the clip's stream-0 mixture gives their 1.9342 dB."""
    runner = CliRunner()
    out = tmp_path / "separated"
    separated = runner.invoke(main, ["separate", str(clip_path), "-m", "tdc-17:top1", "--method", "authors",
                                     "-o", str(out), "-q"], catch_exceptions=False)
    assert separated.exit_code == 0, separated.output
    written = sf.read(out / "tdc-17_top1" / clip_path.name.removesuffix(".stem.mp4") / "vocals.wav",
                      dtype="float32", always_2d=True)[0]
    vocals = read_stems(clip_path)[0]["vocals"]
    sdr = museval.evaluate(vocals.T[None].astype(np.float64), written[None].astype(np.float64), win=44100, hop=44100)[0]
    assert np.nanmedian(sdr) == pytest.approx(AUTHORS_TOP1_STREAM0_SDR, abs=ROUNDING[4])

    evaluated = runner.invoke(main, ["eval", str(clip_path), "-m", "tdc-17:top1", "--method", "authors",
                                     "--sdr-only", "--json", "-q"], catch_exceptions=False)
    assert evaluated.exit_code == 0, evaluated.output
    (track,) = json.loads(evaluated.stdout)["tracks"]
    assert track["median_over_frames"]["vocals"]["SDR"] == pytest.approx(AUTHORS_TOP1_STREAM0_SDR, abs=ROUNDING[4])


def test_chunking_without_a_network_gives_the_mixture_back(clip):
    """With the U-Net bypassed, chunking, trimming and stitching must reconstruct the signal."""
    mixture, _ = clip
    model = zoo_core.load("tdc-17", init=True)
    model.core = lambda image: image.unsqueeze(1)  # the network bypassed: the mixture's image as the estimate
    for signal in (mixture, mixture[:, :56560], mixture[:, :1000]):  # a full useful chunk exactly, a short one
        restored = separate_like_authors(model, signal, batch_size=2)
        assert restored.shape == (1, *signal.shape)
        torch.testing.assert_close(restored[0], signal, atol=1e-5, rtol=0)


def test_bad_input_is_one_line_errors():
    model = zoo_core.load("tdc-17", init=True)
    with pytest.raises(ZooError, match=r"stereo tensor \[2, samples\]"):
        separate_like_authors(model, torch.zeros(1000))
    with pytest.raises(ZooError, match="floating point"):
        separate_like_authors(model, torch.zeros(2, 1000, dtype=torch.int16))
    with pytest.raises(ZooError, match="trim must be in 0..33279"):
        separate_like_authors(model, torch.zeros(2, 1000), trim=40000)
    with pytest.raises(ZooError, match="batch_size"):
        separate_like_authors(model, torch.zeros(2, 1000), batch_size=0)
