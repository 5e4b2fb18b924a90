"""`zoo separate` end to end: weights from the mirror, bad files in a batch, --force, --json, --jobs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from zoo_core.cli import main
import zoo_core
from zoo_core.separation import separate


@pytest.fixture
def zoo(weights_mirror, monkeypatch):
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(weights_mirror))
    runner = CliRunner()
    return lambda *args: runner.invoke(main, [str(a) for a in args], catch_exceptions=False)


def _write_noise(path, frames, channels, rate=44100, subtype="FLOAT", seed=0):
    audio = (np.random.default_rng(seed).standard_normal((frames, channels)) * 0.1).astype(np.float32)
    sf.write(path, audio, rate, subtype=subtype)
    return audio


def _leftovers(folder):
    return [p for p in folder.rglob("*") if p.is_file() and ".part" in p.name]


def test_bad_files_fail_one_line_each_and_the_rest_is_separated(zoo, tmp_path, clip_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    _write_noise(inputs / "good.wav", 30_000, 2)
    (inputs / "empty.wav").write_bytes(b"")
    _write_noise(inputs / "cut.wav", 44100, 2, subtype="PCM_16")
    (inputs / "cut.wav").write_bytes((inputs / "cut.wav").read_bytes()[:40_000])
    nan = np.zeros((20_000, 2), np.float32)
    nan[15_000] = np.nan
    sf.write(inputs / "nan.wav", nan, 44100, subtype="FLOAT")
    _write_noise(inputs / "surround.wav", 1000, 6)
    (inputs / "readme.txt").write_text("not audio")
    no_audio = tmp_path / "no-audio"
    no_audio.mkdir()
    out = tmp_path / "out"
    result = zoo("separate", inputs, inputs / "readme.txt", tmp_path / "missing.mp3", no_audio, "-o", out, "-q")
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    for name, problem in [
        ("empty.wav", "empty file"),
        ("cut.wav", "truncated"),
        ("nan.wav", "NaN"),
        ("surround.wav", "6 channels"),
        ("readme.txt", "unsupported extension"),
        ("missing.mp3", "no such file"),
        ("no-audio", "no audio files"),
    ]:
        assert sum(name in line and problem in line for line in errors) == 1, (name, errors)
    assert errors[-1] == "error: 7 of 8 files failed"
    produced = sorted(str(p.relative_to(out)) for p in out.rglob("*.wav"))
    assert produced == ["tdc-17_top1/good/accompaniment.wav", "tdc-17_top1/good/vocals.wav"]
    assert sf.info(out / "tdc-17_top1" / "good" / "vocals.wav").frames == 30_000
    assert _leftovers(tmp_path) == []


def test_a_rerun_skips_what_the_manifest_records_and_other_outputs_need_force(zoo, tmp_path):
    source = tmp_path / "song.wav"
    _write_noise(source, 20_000, 2, rate=48000)
    out = tmp_path / "out"
    first = zoo("separate", source, "-o", out, "--json", "--bits", "24", "-q")
    assert first.exit_code == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["failed"] == [] and len(summary["separated"]) == 1
    entry = summary["separated"][0]
    assert (entry["sample_rate"], entry["channels"], entry["frames"]) == (48000, 2, 20_000)
    assert sf.info(entry["outputs"]["vocals"]).subtype == "PCM_24"
    outputs = {stem: Path(path) for stem, path in entry["outputs"].items()}
    before = {stem: path.read_bytes() for stem, path in outputs.items()}
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["status"] for r in records] == ["started", "done"] and records[1]["model"] == "tdc-17:top1"
    assert records[1]["outputs"]["vocals"] == str((out / "tdc-17_top1" / "song" / "vocals.wav").absolute())
    written = Path(entry["outputs"]["vocals"]).stat().st_mtime_ns
    again = zoo("separate", source, "-o", out, "--json", "--bits", "24")  # the same settings (other bits redo it)
    assert again.exit_code == 0 and json.loads(again.stdout)["skipped"] == [str(source)], again.stderr
    assert "skipping 1 of 1 files" in again.stderr and Path(entry["outputs"]["vocals"]).stat().st_mtime_ns == written
    unrecorded = zoo("separate", source, "-o", out, "-q", "--manifest", tmp_path / "other.jsonl")
    assert unrecorded.exit_code == 2 and "--force" in unrecorded.stderr
    assert {stem: path.read_bytes() for stem, path in outputs.items()} == before  # left alone
    forced = zoo("separate", source, "-o", out, "-q", "--force", "--segment", "0.5", "--overlap", "0.5")
    assert forced.exit_code == 0, forced.stderr
    # rewritten: float now (the default), and the separation with the new segment settings, read back
    mixture = torch.from_numpy(sf.read(source, dtype="float32", always_2d=True)[0].T.copy())
    expected = separate(zoo_core.load("tdc-17", device="cpu", precision="fp32"), mixture, 48000, segment=0.5, overlap=0.5)
    for stem, path in outputs.items():
        assert sf.info(path).subtype == "FLOAT"
        rewritten = sf.read(path, dtype="float32", always_2d=True)[0].T
        assert np.array_equal(rewritten, expected[stem].numpy()), stem


def test_bad_options_are_one_line_errors(zoo, tmp_path):
    source = tmp_path / "song.wav"
    _write_noise(source, 5_000, 2)
    for args, message in [
        (["--overlap", "1.5"], "overlap must be a fraction"),
        (["--segment", "0"], "segment must be a positive"),
        (["--format", "flac", "--bits", "float"], "FLAC stores integer"),
        (["--device", "nonsense"], "cannot use device"),
        (["-m", "tdc-71"], "unknown model"),
    ]:
        result = zoo("separate", source, "-o", tmp_path / "out", *args)
        assert result.exit_code == 2, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and message in result.stderr, (args, result.stderr)


@pytest.mark.slow
def test_jobs_separate_files_in_parallel_processes(zoo, tmp_path):
    for index in range(2):
        _write_noise(tmp_path / f"song{index}.flac", 10_000, 1, subtype="PCM_16", seed=index)
    result = zoo("separate", tmp_path, "-o", tmp_path / "out", "--jobs", "2", "--json", "-q")
    assert result.exit_code == 0, result.stderr
    separated = json.loads(result.stdout)["separated"]
    assert sorted(entry["track"] for entry in separated) == ["song0", "song1"]
    for entry in separated:
        assert sf.info(entry["outputs"]["accompaniment"]).frames == 10_000
    statuses = [(Path(r["input"]).name, r["status"]) for r in map(json.loads, (tmp_path / "out" / "manifest.jsonl").open())]
    for name in ("song0.flac", "song1.flac"):  # the main process records what the workers do
        assert [status for n, status in statuses if n == name] == ["started", "done"]
