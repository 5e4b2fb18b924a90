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


def _require(path: Path) -> Path:
    if not path.exists():
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
def state_dict_reference() -> Path:
    return _require(STATE_DICT_REFERENCE)


@pytest.fixture(scope="session")
def tdc17(weights_mirror):
    """tdc-17 with the authors' top1 weights, as `zoo` runs it (`zoo_core.inference.optimize`), in eval mode."""
    import torch

    import zoo_core
    from zoo_core.inference import optimize

    model = zoo_core.create_model("tdc-17:top1")
    state = torch.load(weights_mirror / "cac_tdc_17_vocals_top1.pt", map_location="cpu", weights_only=True)
    model.unet.load_state_dict(state)
    model.weights_info = {"model": "tdc-17", "variant": "top1"}  # as load_model records it
    return optimize(model.eval())


@pytest.fixture(autouse=True)
def _isolated_zoo_home(tmp_path_factory, monkeypatch):
    """Every test gets its own empty weights cache and no network, unless it sets them itself."""
    monkeypatch.setenv("ZOO_HOME", str(tmp_path_factory.mktemp("zoo-home")))
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    monkeypatch.delenv("ZOO_WEIGHTS_MIRROR", raising=False)
    monkeypatch.delenv("ZOO_DISABLE_PLUGINS", raising=False)
