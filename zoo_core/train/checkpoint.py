"""Resumable checkpoints: ``DIR/checkpoints/last.pt`` (everything a run needs to continue) and ``best.pt``
(the best validated network weights).

Everything is stored as tensors and plain Python values, so checkpoints load with
``torch.load(weights_only=True)``. Files are written under a temporary name in the same folder and renamed
into place: a kill at any moment leaves the previous checkpoint intact.
"""

from __future__ import annotations

import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ZooError
from ..files import atomic_path

FORMAT = "svs-zoo-train-1"
LAST = "last.pt"
BEST = "best.pt"


def checkpoint_dir(run: Path) -> Path:
    return run / "checkpoints"


def capture_rng() -> dict[str, Any]:
    """The RNG states of python, numpy and torch (CPU and CUDA), as weights_only-loadable values."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` atomically (`zoo_core.files.atomic_path`)."""
    with atomic_path(path) as temporary:
        torch.save({"format": FORMAT, **payload}, temporary)


def load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ZooError(f"{path}: no checkpoint to resume from (the run saved none yet); start it again")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        raise ZooError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {exc})", exit_code=1) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ZooError(f"{path}: not an svs-zoo training checkpoint", exit_code=1)
    return payload
