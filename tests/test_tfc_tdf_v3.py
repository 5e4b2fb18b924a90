"""TFC-TDF-UNet v3 through the whole zoo, as a user meets it: listed with its plugin, a checkpoint in the public
naming imported and separated into four stems, a small v3 trained with a multi-target loss, then separated,
scored on every stem and exported.

The numerical fidelity to the reference implementation is in test_mdx23c_fidelity.py."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
from click.testing import CliRunner

import zoo_core
from zoo_core.audio import read_stems
from zoo_core.cli import main
from zoo_core.registry import reset_catalogue
from zoo_core.train.loop import compute_loss
from zoo_tfc_tdf_v3.convert import to_reference

RATE = 44100
FOUR = ["vocals", "bass", "drums", "other"]


def zoo(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def clip(clip_path) -> dict[str, np.ndarray]:
    stems, rate = read_stems(clip_path)
    assert rate == RATE
    return stems


def test_listed_with_architecture_plugin_and_exact_counts(monkeypatch):
    result = zoo("list", "mdx23c*", "tfc-tdf-v3*", "--json")
    assert result.exit_code == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {"mdx23c-vocals", "mdx23c-musdb18", "mdx23c-instvoc-hq", "tfc-tdf-v3-small"}
    for row in rows.values():
        assert (row["architecture"], row["block"], row["plugin"]) == ("tfc-tdf-v3", "tfc-tdf-v3", "tfc-tdf-v3")
    # the reference construction's counts (test_mdx23c_fidelity.py builds and counts them)
    assert rows["mdx23c-vocals"]["parameters"] == rows["mdx23c-instvoc-hq"]["parameters"] == 111_990_272
    assert rows["mdx23c-musdb18"]["parameters"] == 111_994_368
    assert rows["mdx23c-musdb18"]["stems"] == FOUR  # the order of the checkpoint's config
    monkeypatch.setenv("COLUMNS", "120")
    wide = zoo("list", "mdx23c-musdb18").stdout.splitlines()[1].split()
    assert wide[:3] == ["mdx23c-musdb18", "tfc-tdf-v3", "111,994,368"] and wide[-1] == "tfc-tdf-v3"


def test_multi_target_spectrogram_loss_is_the_mean_over_every_stem():
    """The paper's loss extended to several targets: MSE between the network's images and each target's
    complex-as-channels image, computed here from torch.stft directly."""
    torch.manual_seed(0)
    model = zoo_core.load("tfc-tdf-v3-small", init=True)
    mixture = torch.randn(1, 2, model.settings.window_samples) * 0.1
    targets = torch.randn(1, 4, 2, model.settings.window_samples) * 0.05
    loss = compute_loss(model, model.network, mixture, targets, "spec-mse", torch.autocast("cpu", enabled=False))

    def image(waveform: torch.Tensor) -> torch.Tensor:  # [2, N] -> [4, 2048, T]: Re L, Im L, Re R, Im R
        spec = torch.stft(waveform, 4096, 1024, window=torch.hann_window(4096), center=True, return_complex=True)
        return torch.view_as_real(spec[:, :2048]).permute(0, 3, 1, 2).reshape(4, 2048, -1)

    with torch.no_grad():
        estimate = model.network(image(mixture[0])[None])[0]
    expected = F.mse_loss(estimate, torch.stack([image(target) for target in targets[0]]))
    torch.testing.assert_close(loss.detach(), expected, rtol=1e-5, atol=0)


@pytest.mark.slow
def test_a_checkpoint_in_the_public_naming_imports_and_separates_into_four_stems(tmp_path, clip):
    """A file with the reference's tensor names and shapes of mdx23c-musdb18 (the public checkpoint's layout),
    imported through the CLI with no hash known, then used by zoo separate."""
    torch.manual_seed(1)
    with torch.no_grad():
        model = zoo_core.load("mdx23c-musdb18", init=True)
        for parameter in model.network.parameters():
            parameter.mul_(0.5)
    torch.save(to_reference(model.network.state_dict()), tmp_path / "model_mdx23c_ep_168_copy.ckpt")
    del model
    imported = zoo("import", tmp_path / "model_mdx23c_ep_168_copy.ckpt", "--model", "mdx23c-musdb18")
    assert imported.exit_code == 0, imported.stderr
    assert "imported mdx23c-musdb18:imported" in imported.stdout
    assert "hop 1024, center=True (from the mdx23c layout of released mdx23c-musdb18:ep168)" in imported.stdout
    excerpt = clip["mixture"][:, RATE : 3 * RATE]
    sf.write(tmp_path / "excerpt.wav", excerpt.T, RATE, subtype="FLOAT")
    result = zoo("separate", tmp_path / "excerpt.wav", "-m", "mdx23c-musdb18:imported", "-o", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.stderr
    folder = tmp_path / "out" / "mdx23c-musdb18_imported" / "excerpt"
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{stem}.wav" for stem in FOUR)
    for stem in FOUR:
        audio, rate = sf.read(folder / f"{stem}.wav", dtype="float32", always_2d=True)
        assert rate == RATE and audio.shape == (excerpt.shape[1], 2) and np.isfinite(audio).all()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, clip) -> Path:
    """tfc-tdf-v3-small trained for two steps on tracks cut from the clip: its run folder."""
    root = tmp_path_factory.mktemp("v3-musdb")
    for name, audio in {"clip": clip, "shifted": {k: np.roll(v, RATE, axis=1) for k, v in clip.items()},
                        "valid": {k: v[:, RATE : 4 * RATE] for k, v in clip.items()}}.items():
        folder = root / "train" / name
        folder.mkdir(parents=True)
        for stem in FOUR:
            sf.write(folder / f"{stem}.wav", audio[stem].T, RATE, subtype="FLOAT")
    run = tmp_path_factory.mktemp("v3-run") / "small"
    result = zoo("train", "tfc-tdf-v3-small", "--musdb", root, "-o", run, "--valid-track", "valid", "--steps", 2,
                 "--batch-size", 1, "--valid-every", 2, "--valid-seconds", 1, "--workers", 0)
    assert result.exit_code == 0, result.output
    return run


@pytest.mark.slow
def test_training_a_small_v3_on_four_targets(trained):
    losses = [json.loads(line)["loss"] for line in (trained / "log.jsonl").read_text().splitlines() if '"loss"' in line]
    assert len(losses) == 2 and all(np.isfinite(losses))
    card = tomllib.loads((trained / "card.toml").read_text())
    entry = card["models"]["tfc-tdf-v3-small-small"]
    assert entry["stems"] == FOUR and entry["architecture"]["name"] == "tfc-tdf-v3"
    assert "mean over stems" in card["training"]["valid_aggregation"]


@pytest.mark.slow
def test_the_trained_v3_separates_and_is_scored_on_every_stem(trained, clip_path, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_REGISTRY", str(trained / "card.toml"))
    reset_catalogue()
    try:
        imported = zoo("import", trained / "model.safetensors", "--model", "tfc-tdf-v3-small-small", "--variant", "small")
        assert imported.exit_code == 0, imported.stderr
        scored = zoo("eval", clip_path, "-m", "tfc-tdf-v3-small-small:small", "--sdr-only", "--json", "-q")
        assert scored.exit_code == 0, scored.stderr
        document = json.loads(scored.stdout)
        assert list(document["tracks"][0]["median_over_frames"]) == FOUR
        assert set(document["aggregate"]) == set(FOUR)
        separated = zoo("separate", clip_path, "-m", "tfc-tdf-v3-small-small:small", "--stems", "vocals,drums",
                        "-o", tmp_path / "out", "-q", "--json")
        assert separated.exit_code == 0, separated.stderr
        outputs = json.loads(separated.stdout)["separated"][0]["outputs"]
        assert sorted(outputs) == ["drums", "vocals"]
        frames = {sf.info(path).frames for path in outputs.values()}
        assert frames == {read_stems(clip_path)[0]["mixture"].shape[1]}
    finally:
        reset_catalogue()
