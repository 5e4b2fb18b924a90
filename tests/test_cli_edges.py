"""What a new user hit in the first hour, each pinned: unwritable outputs, interruptions, option vocabulary, clipping,
segment limits, imports of svs-zoo's own state_dict, exporting any cached variant, and weights' framing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

import zoo_core
from zoo_core.cli import main
from zoo_core.cli.runner import ProgressDisplay
from zoo_core.export.inspect import load_torchscript
from zoo_core.weights import import_checkpoint

ZOO = [sys.executable, "-m", "zoo_core.cli"]


@pytest.fixture
def zoo(weights_mirror, monkeypatch):
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(weights_mirror))
    runner = CliRunner()
    return lambda *args: runner.invoke(main, [str(a) for a in args], catch_exceptions=False)


def _noise(path: Path, seconds: float, channels: int = 2, scale: float = 0.1, subtype: str = "FLOAT") -> np.ndarray:
    audio = (np.random.default_rng(0).standard_normal((int(seconds * 44100), channels)) * scale).astype(np.float32)
    sf.write(path, audio, 44100, subtype=subtype)
    return audio


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


@pytest.mark.parametrize("command", [["separate", "IN"], ["eval", "IN", "--sdr-only"], ["demo"]])
def test_outputs_that_cannot_be_written_fail_before_any_work(zoo, tmp_path, command):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    _noise(tmp_path / "in.wav", 0.5)
    args = [str(tmp_path / "in.wav") if a == "IN" else a for a in command]
    started = time.perf_counter()
    result = zoo(*args, "-o", blocker / "out")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "error: cannot use" in result.stderr and "a-file" in result.stderr
    assert _files(tmp_path) == ["a-file", "in.wav"]
    assert time.perf_counter() - started < 60  # nothing was separated (a coarse bound, not a benchmark)


def _start_separation(tmp_path: Path, mirror: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "ZOO_WEIGHTS_MIRROR": str(mirror), "ZOO_OFFLINE": "1"}
    return subprocess.Popen(
        [*ZOO, "separate", *extra, "-o", str(tmp_path / "out"), "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True,
        # as from a terminal: a suite started in the background (`pytest &`) passes an ignored SIGINT on to its
        # children, and Python keeps it ignored, so Ctrl-C would never arrive
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _wait_for_partial_output(tmp_path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    """Until an output is being written: a hidden temporary file appears (before its folder exists)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(".part" in p.name for p in tmp_path.rglob("*")):
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError("no output was started")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT"])
def test_an_interrupted_separation_leaves_no_partial_files_or_empty_folders(weights_mirror, tmp_path, how):
    _noise(tmp_path / "long.wav", 40)
    process = _start_separation(tmp_path, weights_mirror, str(tmp_path / "long.wav"))
    _wait_for_partial_output(tmp_path, process)
    os.kill(process.pid, getattr(signal, how))
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == (143 if how == "SIGTERM" else 130), stderr
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1] in ("terminated", "interrupted")
    # no .part file and no folder for outputs that never landed; the manifest says the item was not finished
    assert _files(tmp_path) == ["long.wav", "out", "out/manifest.jsonl"]
    records = [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    assert records and not [r for r in records if r["status"] == "done"]


@pytest.mark.slow
def test_ctrl_c_during_jobs_stops_the_workers_quietly(weights_mirror, tmp_path):
    for index in range(2):
        _noise(tmp_path / f"song{index}.wav", 40)
    process = _start_separation(tmp_path, weights_mirror, str(tmp_path), "--jobs", "2")
    _wait_for_partial_output(tmp_path, process)
    seen = [p for p in tmp_path.rglob("*") if ".part" in p.name]
    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "Traceback" not in stderr, stderr
    assert seen and all(tmp_path / "out" in p.parents for p in seen), seen  # staged inside -o, never above it
    assert [p for p in tmp_path.rglob("*") if ".part" in p.name] == []


@pytest.mark.slow
def test_a_terminated_jobs_run_stages_its_temporaries_in_the_output_folder_and_leaves_none(weights_mirror, tmp_path):
    """SIGTERM to the whole process group (what a job scheduler or `kill -- -PGID` sends) while two workers write:
    every temporary seen is inside -o, and none is left anywhere."""
    (tmp_path / "in").mkdir()
    for index in range(2):
        _noise(tmp_path / "in" / f"song{index}.wav", 10)
    process = _start_separation(tmp_path, weights_mirror, str(tmp_path / "in"), "--jobs", "2")
    seen: set[Path] = set()
    deadline, first = time.monotonic() + 180, None
    while time.monotonic() < deadline:  # until both workers write (four stems), or a second after the first
        seen.update(p for p in tmp_path.rglob("*") if ".part" in p.name)
        assert process.poll() is None, process.communicate()
        first = first or (time.monotonic() if seen else None)
        if len(seen) >= 4 or (first is not None and time.monotonic() - first > 1):
            break
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143 and "Traceback" not in stderr, stderr
    assert seen and all(tmp_path / "out" in p.parents for p in seen), seen
    assert [p for p in tmp_path.rglob("*") if ".part" in p.name] == []


def test_progress_counts_seconds_of_audio():
    display = ProgressDisplay(1, quiet=False, unit="files")
    display.start(0, "song.wav", 88_200, 44_100)
    display.advance(0, 44_100)
    assert display._seconds(0) == "1.0/2.0 s of audio"


def test_one_option_vocabulary_and_usage_errors_in_the_house_style(zoo, tmp_path):
    top = CliRunner().invoke(main, ["--help"])
    summaries = [line for line in top.stdout.splitlines() if line.startswith("  ") and not line.strip().startswith("-")]
    assert summaries and not [line for line in summaries if line.endswith("...")]
    assert "--overlap FRACTION" in CliRunner().invoke(main, ["eval", "--help"]).stdout
    for command in ("separate", "eval", "demo", "export", "train"):
        help_text = CliRunner().invoke(main, [command, "--help"]).stdout
        assert "-o, --output" in help_text and "--out " not in help_text, command
    missing = zoo("separate")
    assert missing.exit_code == 2 and missing.stderr == "error: Missing argument 'INPUTS...'. (see 'zoo separate --help')\n"
    _noise(tmp_path / "in.wav", 0.3)
    old_spelling = zoo("separate", tmp_path / "in.wav", "--out", tmp_path / "old", "-q")
    assert old_spelling.exit_code == 0 and (tmp_path / "old" / "tdc-17_top1" / "in" / "vocals.wav").is_file()


def test_a_segment_below_the_models_minimum_is_refused(zoo, tmp_path):
    _noise(tmp_path / "in.wav", 0.3)
    result = zoo("separate", tmp_path / "in.wav", "--segment", "0.001", "-o", tmp_path / "out")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "segment 0.001 s is shorter than this model's minimum of 0.046 s" in result.stderr
    assert not (tmp_path / "out").exists()


def test_integer_formats_report_clipping_and_float_keeps_every_value(zoo, tmp_path):
    loud = _noise(tmp_path / "loud.wav", 0.5, scale=0.8)  # Gaussian: many samples beyond +-1
    result = zoo("separate", tmp_path / "loud.wav", "-o", tmp_path / "int", "--bits", "16", "-q")
    assert result.exit_code == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert warned and all("were clipped by the 16-bit format; use --bits float" in line for line in warned)
    result = zoo("separate", tmp_path / "loud.wav", "-o", tmp_path / "float", "-q")
    assert result.exit_code == 0 and "clipped" not in result.stderr
    folder = tmp_path / "float" / "tdc-17_top1" / "loud"
    vocals, _ = sf.read(folder / "vocals.wav", dtype="float32")
    accompaniment, _ = sf.read(folder / "accompaniment.wav", dtype="float32")
    np.testing.assert_allclose(vocals + accompaniment, loud, atol=1e-6)  # sums to the input, beyond +-1 too
    assert np.abs(accompaniment).max() > 1.0


def test_import_accepts_a_state_dict_saved_from_svs_zoo_python(tmp_path):
    torch.manual_seed(3)
    model = zoo_core.load("tfc-tdf-small", init=True)  # what a user saves: torch.save(model.state_dict(), ...)
    torch.save(model.state_dict(), tmp_path / "mine.pt")
    import_checkpoint(tmp_path / "mine.pt", "tfc-tdf-small", variant="mine")
    loaded = zoo_core.load("tfc-tdf-small:mine")
    assert loaded.provenance.layout == "svs-zoo"
    for key, value in model.network.state_dict().items():
        assert torch.equal(loaded.network.state_dict()[key], value), key


@pytest.mark.slow
def test_export_takes_any_cached_variant_a_weights_file_or_initialised_parameters(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(4)
    torch.save(zoo_core.load("tdf-17", init=True).state_dict(), tmp_path / "run.pt")
    runner = CliRunner()
    imported = runner.invoke(main, ["import", "run.pt", "--model", "tdf-17", "--variant", "mine"])
    assert imported.exit_code == 0, imported.stderr
    for args, weights in [
        (["tdf-17:mine", "-o", "exports/"], "mine"),
        (["tdf-17", "--weights", "run.pt", "-o", "exports/file.ts.pt"], "file:run.pt"),
        (["tdf-17", "--init", "-o", "exports/init.ts.pt"], None),
    ]:
        result = runner.invoke(main, ["export", *args])
        assert result.exit_code == 0, (args, result.stderr)
        path = tmp_path / "exports" / ("tdf-17.ts.pt" if args[-1] == "exports/" else Path(args[-1]).name)
        metadata = load_torchscript(path)[1]
        assert (metadata["weights"] or {}).get("variant") == weights


def test_aoti_export_of_a_recurrent_model_is_refused_before_any_work(tmp_path):
    result = CliRunner().invoke(main, ["export", "tdc-rnn", "--format", "aoti", "-o", str(tmp_path / "x.pt2")])
    assert result.exit_code == 1 and "GRU" in result.stderr and "compiling" not in result.stderr
    assert _files(tmp_path) == []


def _lightning_file(path: Path, state_dict_reference: Path, hyper_parameters: dict | None) -> None:
    """A checkpoint in the Lightning generation's layout, made from the authors' key names and shapes."""
    document = json.loads((state_dict_reference / "lightning_tfc_tdf_net_large.json").read_text())
    generator = torch.Generator().manual_seed(7)
    tensors = {}
    for key, shape, dtype in document["keys"]:
        if dtype == "int64":
            tensors[key] = torch.tensor(10)
        elif key.endswith("running_var"):
            tensors[key] = torch.rand(shape, generator=generator) + 0.5
        else:
            tensors[key] = torch.randn(shape, generator=generator) * 0.05
    checkpoint = {"state_dict": tensors}
    if hyper_parameters is not None:
        checkpoint["hyper_parameters"] = hyper_parameters
    torch.save(checkpoint, path)


@pytest.mark.parametrize("records", [True, False])
def test_a_lightning_checkpoint_under_a_users_name_separates_with_its_own_framing(state_dict_reference, tmp_path, records):
    """Re-saved copies of the Lightning large model (hash unknown) get the Lightning generation's STFT (hop 1024,
    centred), from the file's hyper-parameters or from the layout of the released epoch2007; the waveform then
    equals the one the released variant's framing gives with the same weights."""
    hyper_parameters = {"n_fft": 4096, "hop_length": 1024, "num_frame": 128} if records else None
    _lightning_file(tmp_path / "copy.ckpt", state_dict_reference, hyper_parameters)
    import_checkpoint(tmp_path / "copy.ckpt", "tfc-tdf-large", variant="mine")
    mine = zoo_core.load("tfc-tdf-large:mine")
    assert (mine.n_fft, mine.hop_length, mine.center) == (4096, 1024, True)
    reference = zoo_core.load("tfc-tdf-large:epoch2007", init=True).eval()
    reference.network.load_state_dict(mine.network.state_dict())
    mixture = torch.randn(1, 2, 30_000, generator=torch.Generator().manual_seed(1)) * 0.1
    with torch.inference_mode():
        expected = reference(mixture)
        peak = expected.abs().max()
        torch.testing.assert_close(mine(mixture), expected, rtol=0, atol=1e-5 * peak)
        paper_framing = zoo_core.load("tfc-tdf-large", init=True).eval()
        paper_framing.network.load_state_dict(mine.network.state_dict())
        assert (paper_framing(mixture) - expected).abs().max() > 0.1 * peak  # the framing matters


def _in_lightning_layout(ours: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """svs-zoo tensors written the way the authors' Lightning code names and shapes them (module names, CaC
    channel order [Re L, Re R, Im L, Im R], (1, 2) first/last kernels over [T, F])."""
    names = {"downsampling": "downsamplings", "upsampling": "upsamplings", "final_conv": "last_conv"}
    order = [0, 2, 1, 3]  # its own inverse
    out = {}
    for key, value in ours.items():
        if key == "first_conv.0.weight":
            value = value[:, order].transpose(2, 3)
        elif key == "final_conv.0.weight":
            value = value[order].transpose(2, 3)
        elif key == "final_conv.0.bias":
            value = value[order]
        module, _, rest = key.partition(".")
        out[f"spec2spec.{names.get(module, module)}.{rest}"] = value.contiguous()
    return out


def test_weights_of_unknown_framing_are_refused_not_guessed(state_dict_reference, tmp_path):
    """A Lightning-layout file without hyper-parameters for tdc-17, whose released variants are all in the paper's
    layout: nothing says how it was framed."""
    from zoo_core.errors import ZooError

    torch.save({"state_dict": _in_lightning_layout(zoo_core.load("tdc-17", init=True).network.state_dict())}, tmp_path / "odd.ckpt")
    with pytest.raises(ZooError, match="cannot tell which STFT settings .* say it with --stft"):
        import_checkpoint(tmp_path / "odd.ckpt", "tdc-17", variant="odd")
    import_checkpoint(tmp_path / "odd.ckpt", "tdc-17", variant="odd", stft="top1")
    assert zoo_core.load("tdc-17:odd").hop_length == 1024
