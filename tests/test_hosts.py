"""`zoo separate --artifact FILE`: every exported format separates the real clip like the eager model.

The reference is the eager `separate()` of tdc-17 with the authors' top1 weights; each format's file is run by
the CLI, its WAV outputs read back and compared within 1e-4. The ONNX path must not load svs-zoo's model code.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from click.testing import CliRunner

from zoo_core.cli import main
from zoo_core.separate import separate

TOLERANCE = 1e-4  # max absolute difference, float32 WAV outputs
SECONDS = 3


@pytest.fixture(scope="module")
def clip_wav(clip_path: Path, tmp_path_factory) -> Path:
    """The first seconds of the clip's mixture as a float WAV (the track is called "mixture")."""
    from zoo_core.audio import open_audio

    mixture = np.concatenate(list(open_audio(clip_path).blocks()))[: SECONDS * 44100]
    path = tmp_path_factory.mktemp("clip") / "mixture.wav"
    soundfile.write(path, mixture, 44100, subtype="FLOAT")
    return path


@pytest.fixture(scope="module")
def eager_stems(tdc17_top1, clip_wav: Path) -> dict[str, np.ndarray]:
    audio, rate = soundfile.read(clip_wav, dtype="float32", always_2d=True)
    stems = separate(tdc17_top1, torch.from_numpy(audio.T.copy()), rate)
    return {stem: waveform.T.numpy() for stem, waveform in stems.items()}


@pytest.fixture(scope="module")
def onnx_file(tdc17_onnx) -> Path:
    return tdc17_onnx.path


def separate_with(artifact: Path, clip_wav: Path, out: Path, *options: str):
    return CliRunner().invoke(main, ["separate", str(clip_wav), "--artifact", str(artifact), "-o", str(out), "-q", *options])


def assert_outputs_match(out: Path, eager_stems: dict[str, np.ndarray]) -> None:
    folder = out / "tdc-17_top1" / "mixture"  # the eager rule: <model>_<variant> of the file's weights
    assert sorted(p.name for p in folder.iterdir()) == ["accompaniment.wav", "vocals.wav"]
    for stem, expected in eager_stems.items():
        audio, rate = soundfile.read(folder / f"{stem}.wav", dtype="float32", always_2d=True)
        assert rate == 44100 and audio.shape == expected.shape == (SECONDS * 44100, 2)
        difference = np.abs(audio - expected).max()
        assert difference < TOLERANCE, f"{stem}: max abs difference {difference}"


def test_onnx_file_separates_like_eager(onnx_file, clip_wav, eager_stems, tmp_path):
    result = separate_with(onnx_file, clip_wav, tmp_path, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["model"] == "tdc-17" and summary["artifact"] == str(onnx_file)
    assert_outputs_match(tmp_path, eager_stems)


def test_torchscript_file_separates_like_eager(tdc17_torchscript, clip_wav, eager_stems, tmp_path):
    result = separate_with(tdc17_torchscript, clip_wav, tmp_path, "--batch-size", "2")
    assert result.exit_code == 0, result.output
    assert_outputs_match(tmp_path, eager_stems)


@pytest.mark.slow
def test_aoti_package_separates_like_eager(tdc17_aoti_package, clip_wav, eager_stems, tmp_path):
    result = separate_with(tdc17_aoti_package.path, clip_wav, tmp_path)
    assert result.exit_code == 0, result.output
    assert_outputs_match(tmp_path, eager_stems)


MODEL_CODE = ("zoo_core.model", "zoo_core.framing", "zoo_core.registry", "zoo_core.plugins", "zoo_core.weights",
              "zoo_core.inference", "zoo_core.architectures", "zoo_core.layers", "zoo_unet", "zoo_tdc")

RUN_AND_LIST_MODULES = """
import json, sys
from zoo_core.cli import main
code = 0
try:
    main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print(json.dumps({"exit": code, "modules": sorted(m for m in sys.modules if m.startswith("zoo"))}))
"""


def test_onnx_path_imports_no_model_code(onnx_file, clip_wav, tmp_path):
    """Only the file's metadata drives the separation: no model, framing, registry or plugin module loads."""
    command = [sys.executable, "-c", RUN_AND_LIST_MODULES, "separate", str(clip_wav), "--artifact", str(onnx_file),
               "-o", str(tmp_path), "-q"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["exit"] == 0, done.stderr
    assert (tmp_path / "tdc-17_top1" / "mixture" / "vocals.wav").exists()
    loaded = [m for m in report["modules"] if m.startswith(MODEL_CODE)]
    assert loaded == [], loaded
    assert "zoo_core.hosts.spectral" in report["modules"]


@pytest.mark.parametrize(
    "options, message",
    [
        (["-m", "tdc-17"], "error: give either -m/--model or --artifact, not both"),
        (["--precision", "bf16"], "error: --precision applies to -m models"),
        (["--method", "authors"], "error: --method authors needs the model itself (-m)"),
        (["--device", "cuda"], "error: {file}: ONNX files run on the CPU here"),
    ],
)
def test_options_that_do_not_apply_to_files_are_refused(onnx_file, clip_wav, tmp_path, options, message):
    result = separate_with(onnx_file, clip_wav, tmp_path, *options)
    assert result.exit_code == 2
    assert result.stderr.strip().startswith(message.format(file=onnx_file))
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_package_compiled_for_the_cpu_is_not_run_on_cuda(tdc17_aoti_package, clip_wav, tmp_path):
    result = separate_with(tdc17_aoti_package.path, clip_wav, tmp_path, "--device", "cuda")
    assert result.exit_code == 2
    if torch.cuda.is_available():
        assert result.stderr.startswith(f"error: {tdc17_aoti_package.path} is compiled for cpu; separate with --device cpu")
    else:
        assert result.stderr.startswith("error: CUDA not available")
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_not_an_export_is_one_error_line(clip_wav, tmp_path):
    for name, content in [("absent.onnx", None), ("notes.ts.pt", b"not a model")]:
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        result = separate_with(path, clip_wav, tmp_path / "out")
        assert result.exit_code == 2, name
        assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "out").exists()
