"""Both example plugins, installed by pip, through list, info, plugins, pull, separate, stream, export and the
hosts: the U-Net one (examples/third-party-plugin) and the band-split one (examples/bandsplit-plugin: a non-U-Net
architecture, exported by tracing, with a model whose weights ship in the package). Everything runs through the
`zoo` command line with the install folder on the path (as `pip install` into the environment would put it), on
an excerpt of the real MUSDB18 clip: in this process, except `zoo stream` (standard input and output) and the
C++ host."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from click.testing import CliRunner

import zoo_core
from test_cpp_host import host_binary  # noqa: F401  (the built C++ host, a session fixture)
from zoo_core.cli import main
from zoo_core.musdb import open_track
from zoo_core.registry import reset_catalogue

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = [ROOT / "examples" / "third-party-plugin", ROOT / "examples" / "bandsplit-plugin"]
ZOO = (sys.executable, "-m", "zoo_core.cli")  # the `zoo` command, whether or not the venv is on PATH
EXCERPT = (1.0, 4.0)  # seconds of the clip: long enough for several segments of either model
HOST_TOLERANCE = 1e-4  # max absolute difference between two float32 WAV separations (as tests/test_cpp_host.py)
# what each example's family can be exported to (a declared refusal is checked instead); the C++ host runs the
# TorchScript files. The U-Net example's AOTInductor package is compiled, run by `zoo separate --artifact` and
# checked in the every-model matrix (tests/test_every_model.py, which includes this example's models), and the C++
# host's AOTInductor path in tests/test_cpp_host.py: compiling it a second time here would add a minute.
FORMATS = {"bandsplit-tiny": {"torchscript": "ts.pt", "onnx": "onnx"},
           "plain-tfc-tdf-mdx": {"torchscript": "ts.pt", "onnx": "onnx"}}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """Both examples installed by pip (real wheel builds, real dist-info) into one folder."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target",
         str(target), *map(str, EXAMPLES)],
        check=True, capture_output=True,
    )
    return target


@pytest.fixture(scope="module")
def excerpt(clip_path, tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    """(WAV of the clip's mixture excerpt, that mixture [N, 2], the clip's own vocals stem over it [N, 2])."""
    mixture, sources = open_track(clip_path).load()
    rate = 44100
    part = slice(int(EXCERPT[0] * rate), int(EXCERPT[1] * rate))
    path = tmp_path_factory.mktemp("excerpt") / "falcon.wav"
    soundfile.write(path, mixture[:, part].T, rate, subtype="FLOAT")
    return path, mixture[:, part].T, sources["vocals"][:, part].T


@pytest.fixture(autouse=True)
def _installed(site, monkeypatch):
    """The install folder on the path, and a catalogue that finds the plugins there; ZOO_HOME (an empty cache)
    and ZOO_OFFLINE=1 come from conftest."""
    monkeypatch.syspath_prepend(str(site))
    reset_catalogue()
    yield
    reset_catalogue()


def zoo(*args):
    """One `zoo` command line, run in this process: (exit code, stdout, stderr)."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback `zoo` would have printed
    return result.exit_code, result.stdout, result.stderr


def ok(*args) -> str:
    code, out, err = zoo(*args)
    assert code == 0, err
    return out


def stems_in(folder: Path) -> dict[str, np.ndarray]:
    """Every WAV under ``folder`` by stem name, read back as [N, 2] float32."""
    return {path.stem: soundfile.read(path, dtype="float32", always_2d=True)[0] for path in folder.rglob("*.wav")}


def sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Signal-to-distortion ratio in dB by its definition, 10 log10(|s|^2 / |s - s^|^2) (no projections)."""
    return float(10 * np.log10(np.sum(reference**2) / np.sum((reference - estimate) ** 2)))


def test_both_examples_are_listed_described_and_reported():
    rows = {row["name"]: row for row in json.loads(ok("list", "--json"))}
    assert {"plain-tfc-tdf-mdx", "plain-tfc-tdf-small", "bandsplit-tiny"} <= set(rows)
    tiny = rows["bandsplit-tiny"]
    assert (tiny["plugin"], tiny["architecture"], tiny["block"]) == ("bandsplit", "band-split", "")
    assert tiny["weights"] == "downloadable" and tiny["variants"] == ["clip"]
    # 8 bands, 1.5x wider each, over the lowest 384 bins (network.band_edges): bins (first-last) and width
    lines = [line.split() for line in ok("info", "bandsplit-tiny").splitlines()]
    table = lines[lines.index(["levels"]) + 2:][:8]
    assert [row[1] for row in table] == ["0-7", "8-18", "19-36", "37-62", "63-102", "103-161", "162-250", "251-383"]
    plugins = {p["name"]: p for p in json.loads(ok("plugins", "--json"))["plugins"]}
    bandsplit = plugins["bandsplit"]
    assert (bandsplit["distribution"], bandsplit["version"]) == ("zoo-bandsplit-example", "0.1.0")
    assert bandsplit["hooks"] == ["register_architectures", "register_models"]
    assert bandsplit["architectures"] == ["band-split"] and bandsplit["models"] == ["bandsplit-tiny"]
    assert plugins["plain-tfc-tdf"]["models"] == ["plain-tfc-tdf-mdx", "plain-tfc-tdf-small"]


def test_shipped_weights_are_read_from_the_package_offline_and_separate_vocals(site, excerpt, tmp_path):
    """The weights file inside the installed package is the variant's source (conftest sets ZOO_OFFLINE=1), and
    it separates: on the clip, its vocals estimate is closer to the clip's vocals stem than silence (0 dB) and than
    the mixture taken as the estimate, by SDR's definition."""
    wav, mixture, vocals = excerpt
    ok("pull", "bandsplit-tiny")
    info = json.loads(ok("info", "bandsplit-tiny", "--json"))
    shipped = site / "zoo_bandsplit_example" / "bandsplit-tiny-clip.safetensors"
    assert info["entry"]["variants"]["clip"]["url"] == shipped.as_uri()
    ok("separate", wav, "-m", "bandsplit-tiny", "-o", tmp_path, "--bits", "float", "-q")
    estimate = stems_in(tmp_path)["vocals"]
    print(f"bandsplit-tiny:clip vocals SDR {sdr(vocals, estimate):.2f} dB, the mixture's {sdr(vocals, mixture):.2f} dB")
    assert sdr(vocals, estimate) > max(0.0, sdr(vocals, mixture))  # closer to the vocals than silence or the mix


def _weights_for(model: str, folder: Path) -> None:
    """A model without released weights gets initialised ones through `zoo import` (seeded, saved by torch)."""
    import torch

    path = folder / f"{model}.pt"
    torch.manual_seed(0)
    torch.save(zoo_core.load(model, init=True).state_dict(), path)
    ok("import", path, "--model", model)


@pytest.mark.parametrize("model", ["bandsplit-tiny", "plain-tfc-tdf-mdx"])
def test_example_model_separates_streams_exports_and_runs_in_every_host(model, site, excerpt, host_binary,
                                                                        tmp_path):
    """Eager `zoo separate` is the reference: `zoo stream`'s output, and every exported file run by
    `zoo separate --artifact` and (TorchScript) by the C++ host, reproduce it."""
    wav, mixture, _ = excerpt
    if model != "bandsplit-tiny":
        _weights_for(model, tmp_path)
    ok("separate", wav, "-m", model, "-o", tmp_path / "eager", "--bits", "float", "-q")
    eager = stems_in(tmp_path / "eager")
    assert sorted(eager) == ["accompaniment", "vocals"]
    assert eager["vocals"].shape == mixture.shape
    # accompaniment is defined as mixture minus vocals (float WAVs: exact up to float32 rounding)
    assert np.abs(eager["vocals"] + eager["accompaniment"] - mixture).max() <= 1e-6

    streamed = subprocess.run([*ZOO, "stream", "-m", model, "-q"], input=mixture.astype("<f4").tobytes(),
                              capture_output=True, env={**os.environ, "PYTHONPATH": str(site)})
    assert streamed.returncode == 0, streamed.stderr.decode()
    karaoke = np.frombuffer(streamed.stdout, "<f4").reshape(-1, 2)  # aligned with the input: as many frames
    assert karaoke.shape == mixture.shape
    assert np.abs(karaoke - eager["accompaniment"]).max() <= 1e-5

    for fmt, suffix in FORMATS[model].items():
        artifact = tmp_path / f"{model}.{suffix}"
        ok("export", model, "--format", fmt, "-o", artifact)
        out = tmp_path / fmt
        ok("separate", wav, "--artifact", artifact, "-o", out, "--bits", "float", "-q")
        for stem, audio in stems_in(out).items():
            assert np.abs(audio - eager[stem]).max() <= HOST_TOLERANCE, (fmt, stem)
        inspected = ok("inspect", artifact)  # loads the file, reads its zoo.json and runs its self-check
        assert f"model       {model} at 44100 Hz" in inspected and "self-check  ok" in inspected
        if fmt in ("torchscript", "aoti"):
            host = subprocess.run([str(host_binary), artifact, wav, tmp_path / f"host-{fmt}"], capture_output=True,
                                  text=True)
            assert host.returncode == 0, host.stderr
            cpp = stems_in(tmp_path / f"host-{fmt}")
            assert sorted(cpp) == ["accompaniment", "vocals"]
            for stem, audio in cpp.items():
                assert np.abs(audio - eager[stem]).max() <= HOST_TOLERANCE, ("c++", fmt, stem)

    if model == "bandsplit-tiny":  # its family declares AOTInductor unsupported: one line, nothing written
        code, _, err = zoo("export", model, "--format", "aoti", "-o", tmp_path / "tiny.pt2")
        assert code == 1 and err.strip().splitlines() == [
            "error: bandsplit-tiny cannot be exported with --format aoti: torch.export specialises the sequence "
            "length of its GRU across time, so the number of frames cannot stay dynamic"]
        assert not (tmp_path / "tiny.pt2").exists()
