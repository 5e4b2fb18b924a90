"""The band-split RoFormers' small configurations through the commands test_every_model.py does not run: `zoo
train` (four stems, so the loss covers every stem) and `zoo stream`, on the real clip."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

import zoo_core
from zoo_core.audio import read_audio, read_stems
from zoo_core.cli import main
from zoo_core.registry import reset_catalogue
from safetensors.torch import load_file

RATE = 44100
SOURCES = ("drums", "bass", "other", "vocals")


def zoo(*args, **kwargs):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, **kwargs)


@pytest.fixture(scope="module")
def musdb(tmp_path_factory, clip_path) -> Path:
    """ROOT/train/<track>/<stem>.wav: two tracks cut from the clip's stems and a 2-s validation track."""
    stems, rate = read_stems(clip_path)
    assert rate == RATE
    root = tmp_path_factory.mktemp("musdb")
    for track, (start, stop) in {"a": (0, 6 * RATE), "b": (3 * RATE, 9 * RATE), "valid": (RATE, 3 * RATE)}.items():
        folder = root / "train" / track
        folder.mkdir(parents=True)
        for name in SOURCES:
            sf.write(folder / f"{name}.wav", stems[name][:, start:stop].T, RATE, subtype="FLOAT")
    return root


@pytest.fixture(scope="module")
def trained_run(musdb, tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("roformer") / "run"
    result = zoo("train", "bs-roformer-small", "--musdb", musdb, "-o", run, "--valid-track", "valid", "--workers", 0,
                 "--steps", 2, "--batch-size", 2, "--loss", "wave-l1", "--valid-every", 2, "--valid-seconds", 1)
    assert result.exit_code == 0, result.output
    return run


def test_small_bs_roformer_trains_on_four_stems(trained_run):
    """Two optimiser steps of the four-stem small configuration: every stem's mask estimator moved away from the
    initialisation (each stem's loss reached its head), all finite, and the card names the model."""
    trained = load_file(trained_run / "model.safetensors")
    torch.manual_seed(42)  # zoo train's default seed: the initialisation it started from
    initial = zoo_core.load("bs-roformer-small", init=True).network.state_dict()
    assert all(torch.isfinite(value).all() for value in trained.values())
    for stem in range(4):
        key = next(k for k in trained if k.endswith(f"mask_estimators.{stem}.bands.0.layers.0.weight"))
        assert not torch.equal(trained[key], initial[f"mask_estimators.{stem}.bands.0.layers.0.weight"]), stem
    card = tomllib.loads((trained_run / "card.toml").read_text())
    assert "bs-roformer-small" in (trained_run / "card.toml").read_text() and card


def test_trained_small_bs_roformer_streams(trained_run, clip_path, monkeypatch):
    """`zoo import` of the run's weights (its card as a catalogue), then `zoo stream` with them: raw float PCM in,
    as many finite, non-silent vocal samples out."""
    monkeypatch.setenv("ZOO_REGISTRY", str(trained_run / "card.toml"))
    reset_catalogue()
    name = tomllib.loads((trained_run / "card.toml").read_text())
    model = next(iter(name["models"]))
    mixture, rate = read_audio(clip_path, stream=0)
    audio = np.ascontiguousarray(mixture[:, : 2 * RATE].T.astype(np.float32))
    try:
        imported = zoo("import", trained_run / "model.safetensors", "--model", model, "--variant", "run")
        assert imported.exit_code == 0, imported.output
        result = subprocess.run(
            [sys.executable, "-m", "zoo_core.cli", "stream", "-m", model, "-q", "--threads", "1", "--input-format",
             "f32le", "--rate", str(rate), "--channels", "2", "--stems", "vocals"],
            input=audio.tobytes(), capture_output=True, timeout=300,
        )
    finally:
        reset_catalogue()
    assert result.returncode == 0, result.stderr.decode()
    streamed = np.frombuffer(result.stdout, dtype=np.float32).reshape(-1, 2)
    assert streamed.shape[0] == audio.shape[0]
    assert np.isfinite(streamed).all() and np.abs(streamed).max() > 0


@pytest.mark.parametrize("samples", [1, 300, 1100])
def test_inputs_shorter_than_a_centred_stft_reflection_separate(samples):
    """A network of time_factor 1 gets inputs (a track's last, short segment) shorter than the n_fft/2 samples a
    centred STFT reflects: the model pads them to enough frames (torch.stft refuses otherwise) and crops back."""
    model = zoo_core.load("bs-roformer-small", init=True).eval()
    with torch.inference_mode():
        out = model(0.1 * torch.randn(1, 2, samples, generator=torch.Generator().manual_seed(0)))
    assert out.shape == (1, 4, 2, samples) and torch.isfinite(out).all()
    assert model.padding(samples)[1] + samples >= model.n_fft // 2 + 1
