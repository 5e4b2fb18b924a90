"""Training with the paper's recipe: `train` runs (or resumes) a `TrainConfig` in this process's rank.

    from zoo_core.train import TrainConfig, train
    summary = train(TrainConfig(model="NAME", musdb="MUSDB18-HQ", output="runs/small"))

Modules: `data` (tracks, random cross-track mixes), `loop` (the training loop), `checkpoint` (atomic,
resumable checkpoints), `distributed` (torchrun / DDP), `validation` (exact SDR), `card` (the result:
``model.safetensors`` and a registry card), `initialisation` (weights of a fresh model).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import TrainConfig
    from .loop import Summary, train

__all__ = ["Summary", "TrainConfig", "train"]
_HOMES = {"TrainConfig": "config", "Summary": "loop", "train": "loop"}


def __getattr__(name: str) -> Any:
    """Import the training code on first use: `zoo separate` needs `distributed` alone, without the models."""
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
