"""Everything a training run is configured with, saved as ``DIR/config.json`` so that ``--resume DIR`` needs
nothing else."""

from __future__ import annotations

import json
import string
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping, Optional

from ..devices import parse_device
from ..errors import ConfigError, ZooError
from ..files import write_text_atomically

OPTIMIZERS = ("adam", "rmsprop")
LOSSES = ("spec-mse", "wave-l1")
PRECISIONS = ("fp32", "bf16", "fp16")
CONFIG_FILE = "config.json"

# what may change when a run is resumed: schedule, optimiser step size, hardware; never the model or the data
RESUMABLE_OVERRIDES = (
    "steps", "lr", "clip_grad", "patience", "valid_every", "checkpoint_every", "workers", "device", "precision",
    "valid_seconds",
)


@dataclass(frozen=True)
class TrainConfig:
    model: str  # registry name of the architecture
    musdb: str  # data root (MUSDB18, MUSDB18-HQ or a folder of per-stem tracks)
    output: str  # run folder
    init: Optional[str] = None  # NAME:VARIANT of pulled weights to fine-tune from
    name: Optional[str] = None  # model name in the card (default: "<model>-<run>")
    run: Optional[str] = None  # variant name of these weights (default: the run folder's name)
    valid_tracks: tuple[str, ...] = ()  # empty: MUSDB's standard 14 validation tracks
    valid_seconds: Optional[float] = None  # crop validation tracks to their middle N seconds
    steps: int = 100_000
    batch_size: int = 8  # per process
    lr: float = 1e-3
    optimizer: str = "adam"
    clip_grad: Optional[float] = None  # max gradient norm
    loss: str = "spec-mse"
    gain_augment: bool = False
    swap_augment: bool = False
    valid_every: int = 1000
    checkpoint_every: Optional[int] = None  # default: valid_every
    patience: int = 10  # validations without improvement before stopping; 0 = never stop early
    precision: str = "fp32"
    device: str = "auto"
    workers: int = 2
    seed: int = 42

    def validate(self) -> None:
        checks = (
            (self.steps >= 0, f"--steps must be >= 0, got {self.steps}"),
            (self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}"),
            (self.lr > 0, f"--lr must be positive, got {self.lr}"),
            (self.clip_grad is None or self.clip_grad > 0, f"--clip-grad must be positive, got {self.clip_grad}"),
            (self.valid_every >= 1, f"--valid-every must be >= 1, got {self.valid_every}"),
            (self.checkpoint_every is None or self.checkpoint_every >= 1,
             f"--checkpoint-every must be >= 1, got {self.checkpoint_every}"),
            (self.patience >= 0, f"--patience must be >= 0, got {self.patience}"),
            (self.workers >= 0, f"--workers must be >= 0, got {self.workers}"),
            (self.valid_seconds is None or self.valid_seconds > 0,
             f"--valid-seconds must be positive, got {self.valid_seconds}"),
            (self.optimizer in OPTIMIZERS, f"--optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.loss in LOSSES, f"--loss must be one of {', '.join(LOSSES)}"),
            (self.precision in PRECISIONS, f"--precision must be one of {', '.join(PRECISIONS)}"),
        )
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        parse_device(self.device)  # auto, cpu, cuda or cuda:N

    @property
    def checkpoint_interval(self) -> int:
        return self.checkpoint_every or self.valid_every

    @property
    def run_name(self) -> str:
        return self.run or default_run_name(Path(self.output))

    @property
    def card_name(self) -> str:
        return self.name or f"{self.model}-{self.run_name}"

    def save(self, folder: Path) -> None:
        write_text_atomically(folder / CONFIG_FILE, json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    def with_overrides(self, overrides: Mapping[str, Any]) -> "TrainConfig":
        """The saved configuration with the options given again on ``--resume``; only schedule and hardware
        options may change (`RESUMABLE_OVERRIDES`)."""
        fixed = sorted(key for key, value in overrides.items() if key not in RESUMABLE_OVERRIDES and value != getattr(self, key))
        if fixed:
            raise ConfigError(
                f"cannot change {', '.join('--' + key.replace('_', '-') for key in fixed)} when resuming "
                f"(only {', '.join('--' + key.replace('_', '-') for key in RESUMABLE_OVERRIDES)} may change)"
            )
        return replace(self, **{key: value for key, value in overrides.items() if key in RESUMABLE_OVERRIDES})


def load_config(folder: Path) -> TrainConfig:
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise ZooError(f"{folder}: not a training run folder (no {CONFIG_FILE}); start one with `zoo train MODEL ...`")
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in fields(TrainConfig)}
        values = {key: value for key, value in values.items() if key in known}
        values["valid_tracks"] = tuple(values.get("valid_tracks", ()))
        return TrainConfig(**values)
    except (ValueError, TypeError) as exc:
        raise ZooError(f"{path}: unreadable training configuration ({exc})") from None


def default_run_name(output: Path) -> str:
    """The run folder's name as a variant name (lower-case letters, digits, '-', '_', '.')."""
    allowed = string.ascii_lowercase + string.digits + "-_."
    cleaned = "".join(c if c in allowed else "-" for c in output.resolve().name.lower()).strip("-_.")
    return cleaned or "run"
