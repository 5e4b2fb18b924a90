"""Bounded resources, one unit everywhere: one ``--device`` vocabulary for every command, ``--threads``, and the
memory bound on ``--segment`` (a count of samples given as seconds is refused before any work).

Expected values: the documented vocabulary (auto, cpu, cuda, cuda:N), the machine's CPU topology as Linux lists
it in /sys, the SI and IEC definitions of size units, and 64512 samples / 44100 Hz = 1.46 s.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

import zoo_core
from zoo_core.cli import main
from zoo_core.devices import parse_device, resolve_device
from zoo_core.errors import ZooError
from zoo_core.memory import parse_size
from zoo_core.threads import default_threads, per_worker

SAMPLES = 64512  # tdc-17's default segment in samples, as zoo_host took --segment before


@pytest.fixture
def zoo(weights_mirror, monkeypatch):
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(weights_mirror))
    monkeypatch.setattr(os, "isatty", lambda fd: False)  # zoo stream: as in a pipe, whatever runs the tests
    runner = CliRunner()
    return lambda *args: runner.invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def keep_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def song(tmp_path) -> Path:
    path = tmp_path / "song.wav"
    sf.write(path, (np.random.default_rng(0).standard_normal((44100, 2)) * 0.1).astype(np.float32), 44100)
    return path


def _one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    return result.stderr.strip()


def _audio_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.suffix in (".wav", ".flac")] if folder.exists() else []


# --------------------------------------------------------------------------------------------------- devices


def test_device_spellings_are_one_vocabulary():
    for given, canonical in [("auto", "auto"), ("AUTO", "auto"), ("cpu", "cpu"), ("cpu:0", "cpu"), ("cuda", "cuda"),
                             ("cuda:0", "cuda:0"), ("cuda:3", "cuda:3"), (" Cuda:1 ", "cuda:1")]:
        assert parse_device(given) == canonical, given
    for wrong in ["tpu", "cuda:x", "cpu:1", "", "gpu", "meta", "mps"]:
        with pytest.raises(ZooError, match="choose auto, cpu, cuda or cuda:N"):
            parse_device(wrong)


def test_auto_is_the_cpu_without_cuda_and_a_missing_gpu_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    for name in ["cuda", "cuda:3"]:
        with pytest.raises(ZooError, match="^CUDA not available: this torch build or machine has no CUDA device"):
            resolve_device(name)


def test_auto_and_cuda_pick_a_gpu_that_exists(monkeypatch):
    """Two GPUs (faked: resolving a name touches no GPU): auto and cuda give rank r GPU r mod 2."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda", local_rank=3) == torch.device("cuda", 1)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ZooError, match=r"^--device cuda:3: this machine has 2 CUDA devices \(cuda:0 to cuda:1\)$"):
        resolve_device("cuda:3")


@pytest.mark.skipif(torch.cuda.device_count() > 3, reason="cuda:3 exists on this machine")
@pytest.mark.parametrize("command", ["separate", "eval", "stream", "export", "train", "serve"])
def test_every_command_refuses_a_gpu_that_is_not_there_in_one_line(command, zoo, song, clip_path, tmp_path):
    arguments = {
        "separate": ["separate", song, "-o", tmp_path / "out"],
        "eval": ["eval", clip_path, "--sdr-only", "-o", tmp_path / "out"],
        "stream": ["stream"],
        "export": ["export", "tdc-17", "-o", tmp_path / "out" / "x.ts.pt"],
        "train": ["train", "tdc-17", "--musdb", tmp_path, "-o", tmp_path / "out"],
        "serve": ["serve", "--port", "0", "--work-dir", tmp_path / "out"],
    }[command]
    message = _one_error_line(zoo(*arguments, "--device", "cuda:3"))
    assert "CUDA not available" in message or "this machine has" in message, message
    assert _audio_files(tmp_path / "out") == [] and not (tmp_path / "out" / "x.ts.pt").exists()


@pytest.mark.parametrize("command", ["separate", "eval", "stream", "export", "train", "demo", "serve"])
def test_device_defaults_to_auto_everywhere(command):
    text = CliRunner().invoke(main, [command, "--help"]).output
    entry = text[text.index("--device"):].split("\n  -")[0]  # the option's help, up to the next option
    assert "[default: auto]" in " ".join(entry.split()), entry


# --------------------------------------------------------------------------------------------------- threads


def _physical_cores() -> int:
    """Distinct (package, core) pairs among the CPUs this process may use, as Linux lists them in /sys."""
    cores = set()
    for cpu in os.sched_getaffinity(0):
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        cores.add(((topology / "physical_package_id").read_text().strip(), (topology / "core_id").read_text().strip()))
    return len(cores)


def _restricted() -> bool:
    """An affinity mask or a cgroup CPU quota (v2 or v1) narrower than the machine."""
    if len(os.sched_getaffinity(0)) != os.cpu_count():
        return True
    v2, v1 = Path("/sys/fs/cgroup/cpu.max"), Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
    return (v2.exists() and v2.read_text().split()[0] != "max") or (v1.exists() and int(v1.read_text()) > 0)


def test_default_threads_are_the_physical_cores_unless_omp_num_threads_says(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert default_threads() == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    if not Path("/sys/devices/system/cpu/cpu0/topology/core_id").exists():
        pytest.skip("no CPU topology in /sys")
    if _restricted():
        pytest.skip("a restricted CPU set or a CPU quota: the count is not the machine's physical cores")
    assert default_threads() == _physical_cores()


def test_threads_are_divided_among_workers():
    assert [per_worker(4, 1), per_worker(4, 2), per_worker(4, 3), per_worker(2, 4), per_worker(1, 1)] == [4, 2, 1, 1, 1]


def test_threads_option_sets_torch_threads_and_refuses_zero(zoo, song, tmp_path, keep_torch_threads):
    torch.set_num_threads(2)
    result = zoo("separate", song, "-o", tmp_path / "out", "--threads", "1", "-q")
    assert result.exit_code == 0, result.stderr
    assert torch.get_num_threads() == 1
    assert len(_audio_files(tmp_path / "out")) == 2
    for command in (["separate", song], ["eval", song], ["stream"], ["export", "tdc-17"]):
        assert "--threads must be at least 1, got 0" in _one_error_line(zoo(*command, "--threads", "0"))


def test_export_applies_threads_before_its_work(zoo, keep_torch_threads):
    torch.set_num_threads(2)
    # refused after the options are read and before anything is loaded or written
    result = zoo("export", "tdc-17", "--threads", "1", "--init", "--weights", "x.safetensors")
    assert "give either --init or --weights" in _one_error_line(result)
    assert torch.get_num_threads() == 1


# ---------------------------------------------------------------------------------------------------- memory


def test_sizes_read_si_and_iec_units():
    assert parse_size("8G") == 8 * 10**9 and parse_size("8 GB") == 8 * 10**9 and parse_size("500MB") == 500 * 10**6
    assert parse_size("16GiB") == 16 * 2**30 and parse_size("1.5k") == 1500 and parse_size("1000000") == 10**6
    for wrong in ["lots", "8 parsecs", "-1G", ""]:
        with pytest.raises(ZooError, match="give a size such as 8G"):
            parse_size(wrong)


@pytest.mark.parametrize("command", ["separate", "eval", "stream"])
def test_a_segment_in_samples_is_refused_in_one_line_before_any_work(command, zoo, song, clip_path, tmp_path):
    arguments = {"separate": ["separate", song, "-o", tmp_path / "out"],
                 "eval": ["eval", clip_path, "--sdr-only", "-o", tmp_path / "out"], "stream": ["stream"]}[command]
    message = _one_error_line(zoo(*arguments, "--segment", SAMPLES))
    assert message.startswith(f"error: --segment {SAMPLES} s needs about ") and " TB for tdc-17:top1 (limit " in message
    assert message.endswith(f"; did you mean samples? use --segment {SAMPLES / 44100:.2f}")  # 1.46
    assert _audio_files(tmp_path / "out") == [] and not (tmp_path / "out" / "test").exists()


def test_the_default_segment_is_accepted_and_a_lower_limit_refuses_it(zoo, song, tmp_path, monkeypatch):
    done = zoo("separate", song, "-o", tmp_path / "out", "-q")
    assert done.exit_code == 0 and done.stderr == "", done.stderr
    assert len(_audio_files(tmp_path / "out")) == 2
    monkeypatch.setenv("ZOO_MAX_MEMORY", "1MB")
    message = _one_error_line(zoo("separate", song, "-o", tmp_path / "again", "--batch-size", "2"))
    assert message.startswith("error: the default segment (1.46 s) with --batch-size 2 needs about ")
    assert "for tdc-17:top1 (limit 1.0 MB set by ZOO_MAX_MEMORY)" in message and message.endswith("(or raise ZOO_MAX_MEMORY)")
    assert _audio_files(tmp_path / "again") == []


def test_an_exported_file_cuts_a_segment_like_the_model_it_holds():
    """`zoo separate --artifact FILE --segment S` uses the model's own overlap fraction, as `-m MODEL` does (0.75
    for tfc-tdf-v3-small, from registry.toml), read from the file's zoo.json alone."""
    import zoo_core
    from zoo_core.export.metadata import build_metadata
    from zoo_core.hosts import ArtifactModel, FramingContract
    from zoo_core.separation import SeparationSettings

    model = zoo_core.load("tfc-tdf-v3-small", init=True).eval()
    metadata = build_metadata(model, zoo_core.get_entry("tfc-tdf-v3-small"), "onnx")
    exported = ArtifactModel(torch.nn.Identity(), metadata, Path("v3.onnx"), FramingContract.from_metadata(metadata, "v3.onnx"))
    for seconds in (1.0, 2.5, None):
        options = SeparationSettings(segment=seconds)
        assert options.geometry(exported) == options.geometry(model), seconds
    # 1 s = 43.07 hops of 1024 -> 43 hops; 0.75 x 43 = 32.25 -> 32 hops (0.25 would give 11)
    assert SeparationSettings(segment=1.0).geometry(exported) == (43 * 1024, 32 * 1024)
