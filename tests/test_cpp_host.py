"""The C++ host (examples/cpp_host), built with CMake against this torch, on the real clip and original weights.

The build directory is kept (``$ZOO_CPP_BUILD_DIR`` or examples/cpp_host/build), so only the first run pays
for compiling. Both formats must reproduce the Python separation through the same chunking within 1e-4.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile
import torch

import zoo_core
from zoo_core.export.artifact import SeparatorArtifact
from zoo_core.export.inspect import inspect_artifact
from zoo_core.export.torchscript import export_torchscript
from zoo_core.separation import SeparationSettings

HOST_SOURCE = Path(__file__).resolve().parent.parent / "examples" / "cpp_host"
BATCH_SIZE = 4
TOLERANCE = 1e-4  # max absolute difference, float32 WAV output


@pytest.fixture(scope="session")
def host_binary() -> Path:
    if shutil.which("cmake") is None or shutil.which(os.environ.get("CXX", "c++")) is None:
        pytest.skip("cmake or a C++ compiler is not installed")
    build = Path(os.environ.get("ZOO_CPP_BUILD_DIR", HOST_SOURCE / "build"))
    if not (build / "CMakeCache.txt").exists():
        configure = ["cmake", "-S", str(HOST_SOURCE), "-B", str(build), f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}"]
        if shutil.which("ninja"):
            configure += ["-G", "Ninja"]
        subprocess.run(configure, check=True, capture_output=True, text=True)
    built = subprocess.run(["cmake", "--build", str(build)], capture_output=True, text=True)
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    return build / "zoo_host"


@pytest.fixture(scope="module")
def tdc17(tdc17_top1):
    return tdc17_top1


@pytest.fixture(scope="module")
def clip_wav(clip_path: Path, tmp_path_factory) -> Path:
    """The clip's mixture (stream 0) as a 32-bit float WAV."""
    with av.open(str(clip_path)) as container:
        stream = container.streams.audio[0]
        rate = stream.rate
        mixture = np.concatenate([frame.to_ndarray() for frame in container.decode(stream)], axis=1)
    path = tmp_path_factory.mktemp("clip") / "mixture.wav"
    soundfile.write(path, mixture.T.astype(np.float32), rate, subtype="FLOAT")
    return path


@pytest.fixture(scope="module")
def python_stems(tdc17, clip_wav: Path) -> torch.Tensor:
    """The Python separation of the WAV, through the same chunked method and its default segment/overlap."""
    audio, _ = soundfile.read(clip_wav, dtype="float32", always_2d=True)
    artifact = SeparatorArtifact(tdc17, *SeparationSettings().geometry(tdc17))  # the exporter's defaults
    with torch.no_grad():
        return artifact.separate_chunked(torch.from_numpy(audio.T.copy())[None], artifact.segment_samples,
                                         artifact.overlap_samples, BATCH_SIZE)[0]


@pytest.fixture(scope="module")
def torchscript_artifact(tdc17_torchscript) -> Path:
    return tdc17_torchscript  # exported once per session, shared with tests/test_export.py and test_hosts.py


@pytest.fixture(scope="module")
def aoti_package(tdc17_aoti_package):
    return tdc17_aoti_package  # compiled once per session, shared with tests/test_hosts.py


def run_host(binary: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), *map(str, args), "--batch-size", str(BATCH_SIZE)], capture_output=True, text=True)


def assert_host_matches(
    binary: Path, model: Path, clip_wav: Path, out: Path, expected: torch.Tensor, *options: str
) -> str:
    result = run_host(binary, model, clip_wav, out, *options)
    assert result.returncode == 0, result.stderr
    for index, stem in enumerate(["vocals", "accompaniment"]):
        audio, rate = soundfile.read(out / f"{stem}.wav", dtype="float32", always_2d=True)
        assert rate == 44100 and audio.shape == (expected.shape[-1], 2)
        difference = (torch.from_numpy(audio.T.copy()) - expected[index]).abs().max().item()
        assert difference < TOLERANCE, f"{stem}: max abs difference {difference}"
    return result.stdout


@pytest.mark.slow
def test_host_runs_torchscript_artifact_like_python(host_binary, torchscript_artifact, clip_wav, python_stems, tmp_path):
    stdout = assert_host_matches(host_binary, torchscript_artifact, clip_wav, tmp_path, python_stems, "--verbose")
    assert '"model": "tdc-17"' in stdout and '"sample_rate": 44100' in stdout  # the embedded zoo.json
    assert "real-time factor" in stdout


@pytest.mark.slow
def test_host_runs_aoti_package_like_python(host_binary, aoti_package, clip_wav, python_stems, tmp_path):
    assert all(check.passed for check in aoti_package.checks)
    stdout = assert_host_matches(host_binary, aoti_package.path, clip_wav, tmp_path, python_stems)
    assert "format: aoti" in stdout and "real-time factor" in stdout


@pytest.mark.slow
def test_inspect_runs_the_aoti_package(aoti_package):
    inspection = inspect_artifact(aoti_package.path)
    assert inspection.format == "aoti"
    assert inspection.metadata["model"] == "tdc-17" and inspection.metadata["time_factor"] == 1
    assert inspection.self_check.startswith("ok")


@pytest.mark.slow
def test_host_rejects_bad_input_with_one_message(host_binary, torchscript_artifact, tmp_path):
    rng = np.random.default_rng(0)
    wrong_rate = tmp_path / "22k.wav"
    soundfile.write(wrong_rate, rng.standard_normal((2000, 2)).astype(np.float32) * 0.1, 22050)
    mono = tmp_path / "mono.wav"
    soundfile.write(mono, rng.standard_normal(2000).astype(np.float32) * 0.1, 44100)
    stereo = tmp_path / "stereo.wav"
    soundfile.write(stereo, rng.standard_normal((2000, 2)).astype(np.float32) * 0.1, 44100)
    garbage = tmp_path / "garbage.ts.pt"
    garbage.write_bytes(b"not a model")
    plain = tmp_path / "plain.ts.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(plain))
    cases = [
        ((tmp_path / "absent.ts.pt", stereo), "no such file"),
        ((torchscript_artifact, tmp_path / "absent.wav"), "no such file"),
        ((torchscript_artifact, wrong_rate), "sampled at 22050 Hz; the model needs 44100 Hz"),
        ((torchscript_artifact, mono), "has 1 channel(s)"),
        ((garbage, stereo), "is not a TorchScript artifact"),
        ((plain, stereo), "not an svs-zoo artifact"),
    ]
    for (model, audio), message in cases:
        result = run_host(host_binary, model, audio, tmp_path / "out")
        assert result.returncode == 2, (message, result.stderr)
        assert message in result.stderr and result.stderr.startswith("error: ")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_host_usage_help_and_bad_arguments(host_binary, tmp_path):
    helped = subprocess.run([str(host_binary), "--help"], capture_output=True, text=True)
    assert helped.returncode == 0 and helped.stdout.startswith("usage: zoo_host") and "--verbose" in helped.stdout
    missing = subprocess.run([str(host_binary), "model.ts.pt"], capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.startswith("error: expected MODEL, INPUT.wav and OUTPUT_DIR, got 1 argument(s)")


def assert_host_equals_python(host_binary, name: str, check_lengths: list[int], clip_wav, tmp_path) -> list[str]:
    """``name`` (seed 5) exported by `export_torchscript`, run by the C++ host on the clip: every stem it writes
    equals Python's chunked separation of the same file. Returns the stems written."""
    torch.manual_seed(5)
    model = zoo_core.load(name, init=True).eval()
    path = tmp_path / f"{name}.ts.pt"
    export_torchscript(model, zoo_core.get_entry(name), path, check_lengths=check_lengths)
    audio, _ = soundfile.read(clip_wav, dtype="float32", always_2d=True)
    artifact = SeparatorArtifact(model, *SeparationSettings().geometry(model))
    with torch.no_grad():
        expected = artifact.separate_chunked(torch.from_numpy(audio.T.copy())[None], artifact.segment_samples,
                                             artifact.overlap_samples, BATCH_SIZE)[0]
    result = run_host(host_binary, path, clip_wav, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    for index, stem in enumerate(model.stems):
        written, _ = soundfile.read(tmp_path / "out" / f"{stem}.wav", dtype="float32", always_2d=True)
        difference = (torch.from_numpy(written.T.copy()) - expected[index]).abs().max().item()
        assert difference < TOLERANCE, f"{stem}: max abs difference {difference}"
    return sorted(p.name for p in (tmp_path / "out").iterdir())


@pytest.mark.slow
def test_host_writes_every_stem_of_a_four_stem_v3_model(host_binary, clip_wav, tmp_path):
    """TFC-TDF-UNet v3 (4 stems, the lowest 2048 bins kept): the TorchScript file from `zoo export` writes one WAV
    per stem named in its metadata, each equal to Python's chunked separation."""
    written = assert_host_equals_python(host_binary, "tfc-tdf-v3-small", [2049, 3079, 20000], clip_wav, tmp_path)
    assert written == sorted(f"{stem}.wav" for stem in ["vocals", "bass", "drums", "other"])


@pytest.mark.slow
def test_host_runs_a_band_split_roformer_like_python(host_binary, clip_wav, tmp_path):
    """BS-RoFormer (plugin zoo_roformer, 4 stems, time_factor 1): the TorchScript file from `zoo export` gives, in
    the C++ host, every stem equal to Python's chunked separation."""
    assert_host_equals_python(host_binary, "bs-roformer-small", [2049, 20000], clip_wav, tmp_path)


# ------------------------------------------------------------------------------ zoo's units, one error line


@pytest.mark.slow
def test_host_takes_seconds_and_a_fraction_like_zoo_separate(host_binary, torchscript_artifact, tdc17, clip_wav, tmp_path):
    """1.5 s at 44.1 kHz is 64.6 hops of 1024: 65 hops, 66560 samples; half of 65 hops is 32.5, which Python's
    round() (half to even) makes 32 hops, 32768 samples: the rule of `zoo separate --segment 1.5 --overlap 0.5`."""
    segment, overlap = SeparationSettings(segment=1.5, overlap=0.5).geometry(tdc17)
    assert (segment, overlap) == (66560, 32768)
    audio, _ = soundfile.read(clip_wav, dtype="float32", always_2d=True)
    artifact = SeparatorArtifact(tdc17, segment, overlap)
    with torch.no_grad():
        expected = artifact.separate_chunked(torch.from_numpy(audio.T.copy())[None], segment, overlap, BATCH_SIZE)[0]
    stdout = assert_host_matches(host_binary, torchscript_artifact, clip_wav, tmp_path, expected,
                                 "--segment", "1.5", "--overlap", "0.5")
    assert "segment 66560 samples (1.509 s), overlap 32768 samples" in stdout
    short = tmp_path / "short.wav"  # the geometry line is all these two runs are read for
    soundfile.write(short, audio[:44100], 44100, subtype="FLOAT")
    # without --overlap: the model's own fraction (0.25 for tdc-17) of the new segment, 16.25 -> 16 hops
    alone = run_host(host_binary, torchscript_artifact, short, tmp_path / "alone", "--segment", "1.5")
    assert alone.returncode == 0 and "segment 66560 samples (1.509 s), overlap 16384 samples" in alone.stdout
    samples = run_host(host_binary, torchscript_artifact, short, tmp_path / "samples", "--segment-samples", "66560",
                       "--overlap-samples", "32768")
    assert samples.returncode == 0 and "segment 66560 samples (1.509 s), overlap 32768 samples" in samples.stdout


@pytest.mark.slow
def test_host_reads_hop_and_overlap_fraction_from_an_aoti_package(host_binary, aoti_package, clip_wav, tmp_path):
    short = tmp_path / "short.wav"
    audio, _ = soundfile.read(clip_wav, dtype="float32", always_2d=True)
    soundfile.write(short, audio[:44100], 44100, subtype="FLOAT")
    result = run_host(host_binary, aoti_package.path, short, tmp_path / "out", "--segment", "1.5")
    assert result.returncode == 0, result.stderr
    assert "segment 66560 samples (1.509 s), overlap 16384 samples" in result.stdout  # as the TorchScript file


@pytest.mark.slow
def test_host_errors_are_one_line_without_a_traceback(host_binary, torchscript_artifact, tdc17_onnx, clip_wav, tmp_path):
    onnx = tdc17_onnx.path
    cases = [
        ((torchscript_artifact, "--segment-samples", "3"),
         "--segment-samples 3 is shorter than this model's minimum of 2048 samples (two STFT hops)"),
        ((torchscript_artifact, "--segment", "64512"),
         "--segment 64512 s is longer than 600 s; if that is a count of samples, use --segment-samples 64512 "
         "(= --segment 1.46)"),
        ((torchscript_artifact, "--segment", "0.01"), "--segment 0.01 s is shorter than this model's minimum of 0.046 s"),
        ((torchscript_artifact, "--overlap", "16384"),
         "--overlap must be a fraction of the segment in [0, 1), got 16384 (for samples use --overlap-samples 16384)"),
        ((torchscript_artifact, "--segment-samples", "4096", "--overlap-samples", "4096"),
         "the overlap (4096 samples) must be shorter than the segment (4096 samples)"),
        ((torchscript_artifact, "--segment", "1", "--segment-samples", "44100"), "not both"),
        ((torchscript_artifact, "--device", "cuda:3"), "CUDA"),
        ((onnx,), f"{onnx}: ONNX is not a host format (zoo_host runs .ts.pt and .pt2 files); separate with it through "
                  f"ONNX Runtime: zoo separate --artifact {onnx} INPUT"),
    ]
    for (model, *options), message in cases:
        result = subprocess.run([str(host_binary), str(model), str(clip_wav), str(tmp_path / "out"), *options],
                                capture_output=True, text=True)
        assert result.returncode == 2, (options, result.stderr)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, (options, result.stderr)
        assert message in result.stderr, (options, result.stderr)
    assert not (tmp_path / "out").exists()
