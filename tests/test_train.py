"""`zoo train` on real audio: a tiny MUSDB-HQ-layout folder built from the clip's stems, a tiny registered
model (3 TFC-TDF blocks at n_fft 256), and tdc-17 with the authors' weights for fine-tuning."""

from __future__ import annotations

from dataclasses import replace

import json
import math
import os
import re
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
from zoo_core.audio import read_stems
from zoo_core.cli import main
from zoo_core.metrics import sdr
from zoo_core.registry import entries_from_toml, reset_catalogue
from zoo_core.separation import separate
from zoo_core.train import checkpoint
from zoo_core.train.distributed import weights_digest

SOURCES = ("drums", "bass", "other", "vocals")
RATE = 44100
TINY = """
[models.tiny]
block = "tfc-tdf"
description = "3 small TFC-TDF blocks at n_fft 256, for tests"
architecture = { name = "unet", n_blocks = 3, channels = 8, sampling = "time-frequency", representation = "cac" }
block_args = { layers = 2, kernel_t = 3, kernel_f = 3, bottleneck_factor = 16, min_units = 16, bias = true, norm_affine = true }
stft = { n_fft = 256, hop_length = 64, frames = 64, center = true, sample_rate = 44100 }
"""
TINY_CHUNK = 64 * 63  # hop * (frames - 1), centred STFT


def _write_track(folder: Path, stems: dict[str, np.ndarray], scale: float = 1.0) -> None:
    folder.mkdir(parents=True)
    for name, audio in stems.items():
        sf.write(folder / f"{name}.wav", (audio * scale).T, RATE, subtype="FLOAT")


@pytest.fixture(scope="module")
def clip_stems(clip_path) -> dict[str, np.ndarray]:
    stems, rate = read_stems(clip_path)
    assert rate == RATE
    return {name: stems[name] for name in SOURCES}


@pytest.fixture(scope="module")
def musdb(tmp_path_factory, clip_stems) -> Path:
    """ROOT/train/<track>/<stem>.wav: three training tracks (the clip, shifted by 1 s, cropped), a validation
    track (3 s of the clip), a track without bass and one shorter than a training chunk."""
    root = tmp_path_factory.mktemp("musdb")
    train = root / "train"
    _write_track(train / "clip", clip_stems)
    _write_track(train / "shifted", {k: np.roll(v, RATE, axis=1) for k, v in clip_stems.items()})
    _write_track(train / "cropped", {k: v[:, RATE // 2 : 5 * RATE] for k, v in clip_stems.items()})
    _write_track(train / "valid", {k: v[:, RATE : 4 * RATE] for k, v in clip_stems.items()})
    _write_track(train / "no-bass", {k: v for k, v in clip_stems.items() if k != "bass"})
    _write_track(train / "short", {k: v[:, RATE : RATE + 1000] for k, v in clip_stems.items()})
    return root


@pytest.fixture
def tiny(tmp_path, monkeypatch) -> Path:
    """The tiny model registered through ZOO_REGISTRY; one intra-op thread, because such small convolutions
    run several times slower when two threads share two busy cores."""
    registry = tmp_path / "tiny.toml"
    registry.write_text(TINY)
    monkeypatch.setenv("ZOO_REGISTRY", str(registry))
    reset_catalogue()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield registry
    torch.set_num_threads(threads)
    reset_catalogue()


def zoo(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def tiny_run(musdb: Path, out: Path, *extra):
    return zoo("train", "tiny", "--musdb", musdb, "-o", out, "--valid-track", "valid", "--workers", 0, *extra)


def log_entries(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def card_of(run: Path) -> dict:
    return tomllib.loads((run / "card.toml").read_text())


def vocal_sdr(model, stems: dict[str, np.ndarray]) -> float:
    """Median framewise museval-v4 SDR of the model's vocals for the sum-of-stems mixture (computed here, not
    with the trainer's code)."""
    mixture = torch.from_numpy(sum(stems.values()))
    with torch.inference_mode():
        estimate = separate(model, mixture, RATE)["vocals"].numpy()
    frames = sdr(stems["vocals"].T[None], estimate.T[None])[0]
    return float(np.median(frames[np.isfinite(frames)]))


def read_track(folder: Path) -> dict[str, np.ndarray]:
    return {name: sf.read(folder / f"{name}.wav", dtype="float32", always_2d=True)[0].T for name in SOURCES}


@pytest.mark.slow
def test_training_lowers_the_loss_and_raises_the_clip_vocal_sdr(tiny, musdb, tmp_path, monkeypatch):
    run = tmp_path / "run"
    result = tiny_run(musdb, run, "--steps", 48, "--batch-size", 8, "--lr", 3e-3, "--valid-every", 24)
    assert result.exit_code == 0, result.output

    losses = [entry["loss"] for entry in log_entries(run) if "loss" in entry]
    assert len(losses) == 48
    assert np.mean(losses[-12:]) < 0.7 * np.mean(losses[:12])
    card = card_of(run)
    history = card["training"]["history"]
    assert [h["step"] for h in history] == [0, 24, 48]
    untrained = history[0]["sdr"]
    assert card["training"]["valid_sdr"] == max(h["sdr"] for h in history) > untrained + 1

    # the unusable tracks are skipped with a reason, said on the console and in the card
    skipped = card["training"]["data"]["skipped"]
    assert any(line.startswith("no-bass: ") and "missing bass.wav" in line for line in skipped)
    assert any(line.startswith("short: ") and f"1000 < {TINY_CHUNK}" in line for line in skipped)
    assert "warning: skipped no-bass" in result.stderr and "skipped: short" in result.stdout
    assert card["training"]["data"]["train_tracks"] == ["clip", "cropped", "shifted"]

    # the result is a registry model: import it, load it, and its SDR on the clip is the card's
    name, variant = "tiny-run", "run"
    entries = entries_from_toml(run / "card.toml")
    assert [(e.name, list(e.variants)) for e in entries] == [(name, [variant])]
    monkeypatch.setenv("ZOO_REGISTRY", os.pathsep.join([str(tiny), str(run / "card.toml")]))
    reset_catalogue()
    listed = zoo("list")
    assert name in listed.stdout
    imported = zoo("import", run / "model.safetensors", "--model", name, "--variant", variant)
    assert imported.exit_code == 0, imported.output
    import zoo_core

    model = zoo_core.load(f"{name}:{variant}")
    best = checkpoint.load(run / "checkpoints" / checkpoint.BEST)
    assert best["step"] == card["training"]["best_step"]
    assert all(torch.equal(model.network.state_dict()[k], v) for k, v in best["network"].items())
    assert vocal_sdr(model, read_track(musdb / "train" / "valid")) == pytest.approx(card["training"]["valid_sdr"], abs=1e-6)
    exported = zoo("export", f"{name}:{variant}", "-o", tmp_path / "trained.ts.pt")
    assert exported.exit_code == 0 and "checks against eager passed" in exported.stdout, exported.output


def test_resumed_run_equals_an_uninterrupted_one(tiny, musdb, tmp_path):
    common = ("--batch-size", 2, "--valid-every", 100, "--valid-seconds", 1)
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert tiny_run(musdb, straight, "--steps", 6, *common).exit_code == 0
    first = tiny_run(musdb, split, "--steps", 3, *common)
    assert first.exit_code == 0, first.output
    assert checkpoint.load(split / "checkpoints" / checkpoint.LAST)["state"]["step"] == 3
    # continued in a DataLoader worker process: samples depend on their index only
    resumed = zoo("train", "--resume", split, "--steps", 6, "--workers", 1)
    assert resumed.exit_code == 0, resumed.output
    assert "resumed" in resumed.stderr and "at step 3" in resumed.stderr

    a = checkpoint.load(straight / "checkpoints" / checkpoint.LAST)
    b = checkpoint.load(split / "checkpoints" / checkpoint.LAST)
    assert a["state"]["step"] == b["state"]["step"] == 6
    for key, value in a["network"].items():
        torch.testing.assert_close(b["network"][key], value, rtol=0, atol=1e-6)
    for index, state in a["optimizer"]["state"].items():
        for key, value in state.items():
            torch.testing.assert_close(b["optimizer"]["state"][index][key], value, rtol=0, atol=1e-6)
    losses = lambda run: [e["loss"] for e in log_entries(run) if "loss" in e]  # noqa: E731
    np.testing.assert_allclose(losses(split), losses(straight), rtol=1e-5)
    # the run's configuration was kept; only the schedule changed
    assert json.loads((split / "config.json").read_text())["steps"] == 6
    changed = zoo("train", "--resume", split, "--lr", 1e-4, "--batch-size", 4)
    assert changed.exit_code == 2 and "cannot change --batch-size when resuming" in changed.stderr


def test_an_infinite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tiny, clip_stems, tmp_path):
    root = tmp_path / "loud"
    for name in ("a", "b"):  # float WAV holds 1e30; its squared spectrogram overflows float32
        _write_track(root / name, {k: v[:, : 2 * RATE] for k, v in clip_stems.items()}, scale=1e30)
    _write_track(root / "valid", {k: v[:, RATE : 2 * RATE] for k, v in clip_stems.items()})
    run = tmp_path / "run"
    result = tiny_run(root, run, "--steps", 5, "--batch-size", 2)
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()[-1:]
    assert re.match(r"error: training stopped: the loss is (inf|nan) at step 1; the last good checkpoint .*last\.pt is kept", line)
    assert "Traceback" not in result.output
    saved = checkpoint.load(run / "checkpoints" / checkpoint.LAST)
    assert saved["state"]["step"] == 0
    assert all(torch.isfinite(value).all() for value in saved["network"].values() if value.is_floating_point())
    assert not (run / "model.safetensors").exists()


def test_bad_data_and_bad_options_are_one_line_errors(tiny, musdb, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (("--musdb", tmp_path / "missing"), "not a folder; expected ROOT/train/ or ROOT/ holding <track>.stem.mp4"),
        (("--musdb", empty), "no usable tracks found"),
        (("--musdb", musdb, "--valid-track", "nope"), "validation track 'nope' is not among the 5 usable tracks"),
        (("--musdb", musdb), "none of MUSDB's 14 standard validation tracks"),
        (("--musdb", musdb, "--valid-track", "valid", "--precision", "fp16", "--device", "cpu"),
         "--precision fp16 needs a CUDA device; use fp32 or bf16 on the CPU"),
        (("--musdb", musdb, "--valid-track", "valid", "--init", "tdc-17:top1"), "holds weights of 'tdc-17', not of 'tiny'"),
        (("--musdb", musdb, "--valid-track", "valid", "--steps", -1), "--steps must be >= 0"),
    ]
    for args, message in cases:
        result = zoo("train", "tiny", "-o", tmp_path / "run", "--workers", 0, *args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.count("\n") == 1 and message in result.stderr, (args, result.stderr)
    assert not (tmp_path / "run" / "checkpoints").exists()

    assert "missing MODEL" in zoo("train", "--musdb", musdb).stderr
    not_a_run = zoo("train", "--resume", empty)
    assert not_a_run.exit_code == 2 and "not a training run folder" in not_a_run.stderr

    run = tmp_path / "done"
    assert tiny_run(musdb, run, "--steps", 0, "--valid-seconds", 1).exit_code == 0
    again = tiny_run(musdb, run, "--steps", 1)
    assert again.exit_code == 2 and "already holds a training run; continue it with --resume" in again.stderr


@pytest.mark.slow
def test_fine_tuning_starts_from_the_pulled_weights(musdb, weights_mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(weights_mirror))
    run = tmp_path / "finetune"
    result = zoo("train", "tdc-17", "--init", "tdc-17:top1", "--musdb", musdb, "-o", run,
                 "--valid-track", "valid", "--valid-seconds", 1.2, "--steps", 0, "--workers", 0)
    assert result.exit_code == 0, result.output
    card = card_of(run)
    (first,) = card["training"]["history"]
    assert first["step"] == 0

    import zoo_core

    pulled = zoo_core.load("tdc-17:top1")
    valid = read_track(musdb / "train" / "valid")
    kept = round(1.2 * RATE)
    start = (3 * RATE - kept) // 2  # --valid-seconds keeps the middle of the track
    middle = {name: audio[:, start : start + kept] for name, audio in valid.items()}
    assert first["sdr"] == pytest.approx(vocal_sdr(pulled, middle), abs=1e-6)
    variant = card["models"]["tdc-17-finetune"]["variants"]["finetune"]
    assert variant["license"] == "MIT" and "fine-tuned from tdc-17:top1" in variant["origin"]
    # before any step the weights written are the pulled ones
    written = checkpoint.load(run / "checkpoints" / checkpoint.BEST)["network"]
    assert weights_digest(written) == weights_digest(pulled.network.state_dict())


@pytest.mark.slow
def test_two_process_ddp_on_cpu_keeps_every_rank_identical(tiny, musdb, tmp_path):
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "zoo_core.cli", "train", "tiny", "--musdb", str(musdb), "-o", str(run), "--valid-track", "valid",
        "--steps", "3", "--batch-size", "2", "--valid-seconds", "1", "--workers", "0", "--device", "cpu",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    digests = dict(re.findall(r"rank (\d) of 2: step 3, weights sha256 ([0-9a-f]{64})", done.stdout))
    assert sorted(digests) == ["0", "1"]
    saved = checkpoint.load(run / "checkpoints" / checkpoint.LAST)
    assert digests["0"] == digests["1"] == weights_digest(saved["network"])
    # only rank 0 writes: one log line per step, one card
    assert [e["step"] for e in log_entries(run) if "loss" in e] == [1, 2, 3]
    assert "batch 2 x 2 process(es)" in card_of(run)["models"]["tiny-ddp"]["variants"]["ddp"]["origin"]


def test_a_fresh_model_is_initialised_like_the_authors_code(tiny):
    from zoo_unet.initialisation import initialise

    model = zoo_core.load("tiny", init=True)
    initialise(model.network)
    matrices = [p for p in model.network.parameters() if p.dim() >= 2 and p.numel() >= 2000]
    assert len(matrices) >= 3
    for parameter in matrices:
        fan_in = parameter.shape[1] * parameter[0][0].numel()
        fan_out = parameter.shape[0] * parameter[0][0].numel()
        assert parameter.std().item() == pytest.approx(math.sqrt(2 / (fan_in + fan_out)), rel=0.15)
    relu = zoo_core.load("tiny", init=True)
    relu.network.config = replace(relu.network.config, output_activation="relu")
    initialise(relu.network)
    big = max((p for p in relu.network.parameters() if p.dim() >= 2), key=lambda p: p.numel())
    fan_in = big.shape[1] * big[0][0].numel()
    assert big.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.15)


def test_musdb18_stem_files_are_read_like_the_decoded_clip(clip_path, clip_stems, tmp_path):
    from zoo_core.train.data import RandomMixes, split_tracks

    train = tmp_path / "musdb" / "train"
    train.mkdir(parents=True)
    for name in ("first", "second", "valid"):
        (train / f"{name}.stem.mp4").symlink_to(clip_path)
    (train / "broken.stem.mp4").write_bytes(b"not an mp4 file")
    data = split_tracks(tmp_path / "musdb", RATE, TINY_CHUNK, ("valid",))
    assert data.layout == "MUSDB18 .stem.mp4"
    assert [t.name for t in data.train] == ["first", "second"] and [t.name for t in data.valid] == ["valid"]
    assert len(data.skipped) == 1 and data.skipped[0].startswith("broken.stem.mp4: ")
    data.prepare()
    track = data.train[0]
    for stem in SOURCES:
        np.testing.assert_array_equal(track.read(stem, 1000, 500), clip_stems[stem][:, 1000:1500])

    # a sample depends on its index only; the mixture is the sum of four stems drawn independently
    mixes = RandomMixes(data.train, ["vocals"], TINY_CHUNK, seed=7)
    mixture, vocals = mixes[3]
    assert vocals.shape == (1, 2, TINY_CHUNK)
    again = RandomMixes(data.train, ["vocals"], TINY_CHUNK, seed=7)[3]
    assert torch.equal(mixture, again[0]) and torch.equal(vocals, again[1])
    assert not torch.equal(mixture, mixes[4][0])
    swapped = RandomMixes(data.train, ["vocals"], TINY_CHUNK, seed=7, gain=True, swap=True)[3][1]
    assert not torch.equal(swapped, vocals)


def test_step_sampler_shards_ranks_and_resumes_mid_stream():
    from itertools import islice

    from zoo_core.train.data import StepSampler

    ranks = [list(islice(iter(StepSampler(0, 3, rank, 2)), 12)) for rank in (0, 1)]
    assert not set(ranks[0]) & set(ranks[1])
    assert sorted(ranks[0] + ranks[1]) == list(range(24))
    assert list(islice(iter(StepSampler(2, 3, 1, 2)), 6)) == ranks[1][6:12]


def test_waveform_loss_rmsprop_and_clipping_train(tiny, musdb, tmp_path, monkeypatch):
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    from zoo_core.train import loop
    from zoo_core.train.data import RandomMixes

    clip = 0.02  # below this tiny model's raw gradient norms (about 0.04 to 0.05), so that clipping has to act
    norms = []  # [before clipping, what the optimizer stepped with], per step
    batches, datasets = [], []
    real_clip, real_step, real_loader = torch.nn.utils.clip_grad_norm_, loop.Trainer._step, loop.Trainer._loader

    def total_norm(grads) -> float:
        return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).item()

    def clip_and_record(parameters, max_norm, *args, **kwargs):
        parameters = list(parameters)
        norms.append([total_norm([p.grad for p in parameters if p.grad is not None]), None])
        return real_clip(parameters, max_norm, *args, **kwargs)

    def record_step_norm(optimizer, args, kwargs):
        norms[-1][1] = total_norm([p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None])

    def record_loader(self):
        loader = real_loader(self)
        datasets.append(loader.dataset)
        return loader

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip_and_record)
    monkeypatch.setattr(loop.Trainer, "_step", lambda self, m, t: batches.append((m, t)) or real_step(self, m, t))
    monkeypatch.setattr(loop.Trainer, "_loader", record_loader)
    hook = register_optimizer_step_pre_hook(record_step_norm)
    run = tmp_path / "wave"
    try:
        result = tiny_run(musdb, run, "--steps", 3, "--batch-size", 2, "--valid-seconds", 1, "--loss", "wave-l1",
                          "--optimizer", "rmsprop", "--clip-grad", clip, "--gain-augment", "--swap-augment")
    finally:
        hook.remove()
    assert result.exit_code == 0, result.output
    losses = [e["loss"] for e in log_entries(run) if "loss" in e]
    assert len(losses) == 3 and all(0 < loss < 1 for loss in losses)
    saved = checkpoint.load(run / "checkpoints" / checkpoint.LAST)
    assert list(saved["optimizer"]["state"][0]) == ["step", "square_avg"]  # RMSprop's state
    config = card_of(run)["training"]["config"]
    assert (config["loss"], config["clip_grad"], config["gain_augment"]) == ("wave-l1", clip, True)

    # clipping bounds the gradient the optimizer steps with, and it did act: some raw gradients were larger
    assert len(norms) == 3 and all(after is not None for _, after in norms)
    assert all(after <= clip * (1 + 1e-5) for _, after in norms), norms
    assert any(before > clip for before, _ in norms), norms
    # augmentation changes the batch: each trained batch is the augmented draw, not the plain one
    (augmented,) = datasets
    assert (augmented.gain, augmented.swap) == (True, True)
    plain = RandomMixes(augmented.tracks, augmented.target_stems, augmented.chunk, augmented.seed)
    for step, (mixture, target) in enumerate(batches):
        indices = range(step * 2, step * 2 + 2)
        assert torch.equal(mixture, torch.stack([augmented[i][0] for i in indices]))
        assert torch.equal(target, torch.stack([augmented[i][1] for i in indices]))
        unaugmented = torch.stack([plain[i][0] for i in indices])
        assert mixture.shape == unaugmented.shape and not torch.allclose(mixture, unaugmented, atol=1e-3)


def test_a_run_folder_that_cannot_be_written_is_refused_before_any_work(tiny, musdb, tmp_path, unwritable_folder):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for out in (blocker / "run", unwritable_folder / "run"):
        result = tiny_run(musdb, out)
        assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output  # nothing logged before
        assert result.stderr.startswith(f"error: cannot use {out} as the run folder: ")
    assert blocker.read_text() == "not a folder"


@pytest.mark.slow
def test_bf16_trains_on_the_cpu_close_to_fp32(tiny, musdb, tmp_path):
    """--precision bf16 means the same on the CPU for train as for separate: bfloat16 autocast. Reference: the
    fp32 run with the same seed; bf16 rounding must change the losses, but only slightly."""
    losses = {}
    for precision in ("fp32", "bf16"):
        run = tmp_path / precision
        done = tiny_run(musdb, run, "--steps", 2, "--batch-size", 2, "--valid-seconds", 1, "--device", "cpu",
                        "--precision", precision)
        assert done.exit_code == 0, done.output
        losses[precision] = [entry["loss"] for entry in log_entries(run) if "loss" in entry]
    assert len(losses["bf16"]) == 2 and all(math.isfinite(loss) for loss in losses["bf16"])
    assert losses["bf16"] != losses["fp32"]
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.05)
