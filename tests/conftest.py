"""Shared fixtures: the real data in ../shared (MUSDB clip, the authors' original checkpoints)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("ZOO_SHARED_DIR", ROOT.parent / "shared"))
WEIGHTS_MIRROR = SHARED / "weights" / "ismir2020"
CLIP = SHARED / "audio" / "The Easton Ellises - Falcon 69.stem.mp4"
STATE_DICT_REFERENCE = SHARED / "reference" / "original_state_dicts"


def in_ci() -> bool:
    """CI sets ``CI`` (GitHub, GitLab and others set it to ``true``; .ci/run exports ``CI=1``)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _require(path: Path) -> Path:
    """Real data: a developer without ../shared skips these tests; CI must have it, so there they fail."""
    if not path.exists():
        if in_ci():
            pytest.fail(f"real data not available: {path} (CI is set: the tests that need ../shared must run; "
                        "provide it or point ZOO_SHARED_DIR at it)", pytrace=False)
        pytest.skip(f"real data not available: {path}")
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return _require(SHARED)


@pytest.fixture(scope="session")
def weights_mirror() -> Path:
    return _require(WEIGHTS_MIRROR)


@pytest.fixture(scope="session")
def clip_path() -> Path:
    return _require(CLIP)


@pytest.fixture(scope="session")
def golden_mixture(clip_path):
    """``read(source)``: the samples a golden fixture's reference run separated (its JSON's ``audio`` table: file
    beside the clip, stream, first samples), ``[2, N]`` float32; their SHA-256 must be the recorded one, or a
    comparison with the fixture would mean nothing."""
    import hashlib

    import numpy as np
    import torch

    from zoo_core.audio import read_audio

    def read(source: dict):
        mixture, rate = read_audio(clip_path.parent / source["file"], stream=source["stream"])
        assert rate == source["sample_rate"]
        mixture = torch.from_numpy(np.ascontiguousarray(mixture[:, : source["first_samples"]]))
        digest = hashlib.sha256(mixture.numpy().tobytes()).hexdigest()
        assert digest == source["sha256_float32"], "the decoded clip differs from the one the fixture was made from"
        return mixture

    return read


@pytest.fixture(scope="session")
def state_dict_reference() -> Path:
    return _require(STATE_DICT_REFERENCE)


@pytest.fixture(scope="session")
def tdc17(weights_mirror):
    """tdc-17 with the authors' top1 weights, as `zoo` runs it (`zoo_core.inference.optimize`), in eval mode."""
    import torch

    import zoo_core
    from zoo_core.inference import optimize

    from zoo_core.registry import build_model

    model = build_model("tdc-17:top1", provenance=zoo_core.WeightsProvenance("tdc-17", "top1"))
    state = torch.load(weights_mirror / "cac_tdc_17_vocals_top1.pt", map_location="cpu", weights_only=True)
    model.network.load_state_dict(state)
    return optimize(model.eval())


@pytest.fixture(autouse=True)
def _isolated_zoo_home(tmp_path_factory, monkeypatch):
    """Every test gets its own empty weights cache and no network, unless it sets them itself."""
    monkeypatch.setenv("ZOO_HOME", str(tmp_path_factory.mktemp("zoo-home")))
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    monkeypatch.delenv("ZOO_WEIGHTS_MIRROR", raising=False)
    monkeypatch.delenv("ZOO_DISABLE_PLUGINS", raising=False)


def tdc17_with_weights(weights_mirror: Path, variant: str = "top1"):
    """tdc-17 with the authors' original checkpoint, described as `zoo_core.load_model` describes it (the
    output folder of a separation, and an export's metadata, follow that description)."""
    import hashlib

    import torch

    import zoo_core

    from zoo_core.registry import build_model

    file = weights_mirror / f"cac_tdc_17_vocals_{variant}.pt"
    released = zoo_core.get_entry("tdc-17").variants[variant]
    provenance = zoo_core.WeightsProvenance("tdc-17", variant, hashlib.sha256(file.read_bytes()).hexdigest(),
                                            released.url, released.git_sha1, released.format, released.layout)
    model = build_model(f"tdc-17:{variant}", provenance=provenance)
    model.network.load_state_dict(torch.load(file, map_location="cpu", weights_only=True))
    return model.eval()


@pytest.fixture(scope="session")
def tdc17_top1(weights_mirror: Path):
    return tdc17_with_weights(weights_mirror)


@pytest.fixture(scope="session")
def tdc17_aoti_package(tdc17_top1, tmp_path_factory):
    """tdc-17 top1 compiled with AOTInductor once per session (a minute or two): the C++ host's tests and the
    Python host's share it. ``.warnings``: every warning the export let through, whatever pytest's filters."""
    import warnings

    import zoo_core
    from zoo_core.export.aoti import export_aoti

    path = tmp_path_factory.mktemp("aoti") / "tdc-17.pt2"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = export_aoti(tdc17_top1, zoo_core.get_entry("tdc-17"), path, check_frames=[1, 3, 8])
    result.warnings = [f"{w.category.__name__}: {w.message}" for w in caught]
    return result


@pytest.fixture(scope="session")
def tdc17_torchscript(tdc17_top1, tmp_path_factory) -> Path:
    """tdc-17 top1 as a TorchScript file, exported once per session and checked on three short lengths."""
    import zoo_core
    from zoo_core.export.torchscript import export_torchscript

    path = tmp_path_factory.mktemp("torchscript") / "tdc-17.ts.pt"
    export_torchscript(tdc17_top1, zoo_core.get_entry("tdc-17"), path, check_lengths=[1025, 3079, 6145])
    return path


@pytest.fixture(scope="session")
def tdc17_onnx(tdc17_top1, tmp_path_factory):
    """tdc-17 top1 as an ONNX file (an `ExportResult`), exported once per session."""
    import zoo_core
    from zoo_core.export.onnx import export_onnx

    path = tmp_path_factory.mktemp("onnx") / "tdc-17.onnx"
    return export_onnx(tdc17_top1, zoo_core.get_entry("tdc-17"), path)


@pytest.fixture(scope="session")
def unwritable_folder(tmp_path_factory) -> Path:
    """A folder in which no file can be created, by root either (``os.access`` says yes to root everywhere): a
    read-only folder for an ordinary user, else a kernel file system's folder."""
    import tempfile

    read_only = tmp_path_factory.mktemp("read-only")
    read_only.chmod(0o555)
    for folder in (read_only, Path("/sys"), Path("/proc")):
        try:
            tempfile.TemporaryFile(dir=folder).close()
        except OSError:
            return folder
    pytest.skip("no folder here refuses new files")
