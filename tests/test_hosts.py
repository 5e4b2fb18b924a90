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
from zoo_core.separation import separate

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


MODEL_CODE = ("zoo_core.model", "zoo_core.registry", "zoo_core.plugins", "zoo_core.weights",
              "zoo_core.inference", "zoo_core.architectures", "zoo_unet", "zoo_tfc_tdf_v3")

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
    """Only the file's metadata drives the separation: no model, registry, weights or plugin module loads (the
    host composes the spectrogram pipeline, `zoo_core.framing`, configured by the metadata alone)."""
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


# ---- the framing contract, against an independent numpy definition ---------------------------------------


def _numpy_padding(samples: int, n_fft: int, hop: int, center: bool, factor: int) -> tuple[int, int]:
    """The contract's padding (docs/deployment.md): the fewest frames, a multiple of the core's time factor,
    that cover every sample; uncentred frames lead with n_fft - hop zeros; a centred STFT's input is longer than
    the n_fft / 2 samples it reflects at each end."""
    left = 0 if center else n_fft - hop
    frames = factor
    while True:
        total = hop * (frames - 1) + (0 if center else n_fft)
        if total >= samples + left + (0 if center else left) and (not center or total > n_fft // 2):
            return left, total - samples - left
        frames += factor


def _numpy_stft(x: np.ndarray, n_fft: int, hop: int, center: bool) -> np.ndarray:
    """``[C, N]`` → ``[C, n_fft/2+1, T]``: periodic Hann, reflection by n_fft/2 when centred."""
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    if center:
        x = np.pad(x, ((0, 0), (n_fft // 2, n_fft // 2)), mode="reflect")
    frames = 1 + (x.shape[1] - n_fft) // hop
    return np.stack([np.fft.rfft(x[:, t * hop : t * hop + n_fft] * window) for t in range(frames)], axis=-1)


def _numpy_istft(spec: np.ndarray, n_fft: int, hop: int, center: bool, length: int) -> np.ndarray:
    """Weighted overlap-add divided by the summed squared window where it is above float32's tiny."""
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = spec.shape[-1]
    full = n_fft + hop * (frames - 1)
    signal = np.zeros((spec.shape[0], full))
    norm = np.zeros(full)
    for t in range(frames):
        signal[:, t * hop : t * hop + n_fft] += np.fft.irfft(spec[:, :, t], n=n_fft) * window
        norm[t * hop : t * hop + n_fft] += window**2
    start = n_fft // 2 if center else 0
    signal, norm = signal[:, start : start + length], norm[start : start + length]
    return signal / np.where(norm > np.finfo(np.float32).tiny, norm, 1.0)


@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("representation", ["cac", "magnitude"])
@pytest.mark.parametrize("factor, samples", [(4, 3001), (1, 50)])  # 50: fewer than a centred STFT reflects
def test_the_host_framing_follows_the_contract_as_numpy_defines_it(center, representation, factor, samples):
    """What an exported file's metadata promises (docs/deployment.md), written once more in numpy: the image a
    core gets (the lowest ``bins`` bins as [Re L, Im L, Re R, Im R], or magnitudes) and the waveform its
    estimate becomes (zeros above ``bins``, the mixture's phase for magnitudes, inverse STFT, cropped)."""
    from zoo_core.hosts.spectral import FramingContract, SpectralHost

    n_fft, hop, bins = 256, 64, 100
    metadata = {"sample_rate": 8000, "stft": {"n_fft": n_fft, "hop_length": hop, "center": center, "frames": 16,
                                              "bins": bins}, "representation": representation, "time_factor": factor,
                "model_stems": ["vocals", "other"]}
    seen = []

    def core(image: torch.Tensor) -> torch.Tensor:  # stem k is (k + 1) / 4 of the image
        seen.append(image.double().numpy())
        return torch.stack([image * 0.25, image * 0.5], 1)

    host = SpectralHost(core, FramingContract.from_metadata(metadata, "test"))
    mixture = np.random.default_rng(3).standard_normal((2, samples))
    out = host(torch.from_numpy(mixture).float()[None])[0].double().numpy()

    left, right = _numpy_padding(samples, n_fft, hop, center, factor)
    spec = _numpy_stft(np.pad(mixture, ((0, 0), (left, right))), n_fft, hop, center)
    assert spec.shape[-1] % factor == 0
    kept = spec[:, :bins]
    if representation == "cac":
        image = np.stack([kept[0].real, kept[0].imag, kept[1].real, kept[1].imag])
    else:
        image = np.abs(kept)
    scale = np.abs(image).max()
    assert np.abs(seen[0][0] - image).max() < 1e-5 * scale
    for index, gain in enumerate((0.25, 0.5)):
        estimate = np.zeros_like(spec)
        estimate[:, :bins] = gain * kept  # a CaC image scaled, or magnitudes scaled with the mixture's phase
        expected = _numpy_istft(estimate, n_fft, hop, center, samples + left + right)[:, left : left + samples]
        assert np.abs(out[index] - expected).max() < 1e-5 * np.abs(mixture).max()
