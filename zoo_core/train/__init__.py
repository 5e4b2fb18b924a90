"""Training with the paper's recipe: `train` runs (or resumes) a `TrainConfig` in this process's rank.

    from zoo_core.train import TrainConfig, train
    summary = train(TrainConfig(model="tfc-tdf-small", musdb="MUSDB18-HQ", output="runs/small"))

Modules: `data` (tracks, random cross-track mixes), `loop` (the training loop), `checkpoint` (atomic,
resumable checkpoints), `distributed` (torchrun / DDP), `validation` (exact SDR), `card` (the result:
``model.safetensors`` and a registry card), `initialisation` (weights of a fresh model).
"""

from .config import TrainConfig
from .loop import Summary, train

__all__ = ["Summary", "TrainConfig", "train"]
