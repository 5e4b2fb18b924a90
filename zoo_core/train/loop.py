"""The training loop: the paper's recipe (random cross-track mixes, MSE between complex-as-channels
spectrograms, Adam), validated with the exact SDR, checkpointed atomically, resumable, data-parallel.

One step: a batch of random mixes per process → STFT → framing → network (DDP) → loss against the target's
framed STFT (``spec-mse``; masking models compare mask × input) or, with ``wave-l1``, the L1 distance between
the inverse-STFT waveform and the target. The loss is averaged over ranks before the step, so a NaN or Inf on
any rank stops every rank at once, before the optimiser touches the weights, and the last checkpoint stays
the last good one.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader

from ..errors import ConfigError, ZooError
from ..model import LEGACY_NETWORK_NAME, SeparationModel
from ..loading import load
from ..registry import count_parameters, get_entry, split_name
from . import checkpoint, distributed
from ..weights.store import write_safetensors
from .card import WEIGHTS_FILE, write_card
from .config import TrainConfig
from .data import RandomMixes, StepSampler, TrackSet, split_tracks
from .validation import AGGREGATION, median_sdr, track_sdr

LOG_FILE = "log.jsonl"
PRINT_EVERY = 10  # steps between loss lines on the console (every step goes to log.jsonl)

Log = Callable[[str], None]


@dataclass
class RunState:
    """What a checkpoint restores besides the weights and the optimiser."""

    step: int = 0
    best_sdr: float = -math.inf
    best_step: Optional[int] = None
    stale: int = 0  # validations since the last improvement
    history: list[dict] = field(default_factory=list)  # one entry per validation

    def as_dict(self) -> dict:
        return {"step": self.step, "best_sdr": self.best_sdr, "best_step": self.best_step, "stale": self.stale,
                "history": self.history}


@dataclass
class Summary:
    steps: int
    best_step: Optional[int]
    best_sdr: float
    stopped: str  # why the loop ended
    weights: Optional[Path]
    card: Optional[Path]
    skipped: list[str]
    weights_digest: str  # of the final weights this rank holds


def model_to_train(config: TrainConfig, log: Log) -> SeparationModel:
    """The model to train: pulled weights with ``--init``, else freshly initialised by its architecture's own
    scheme (PyTorch's defaults for a family without one)."""
    entry = get_entry(config.model)
    if config.init:
        init_model = split_name(config.init)[0]
        if init_model != entry.name:
            raise ConfigError(f"--init {config.init} holds weights of {init_model!r}, not of {entry.name!r}")
        model = load(config.init)
        log(f"initialised from {config.init} ({model.provenance.sha256[:12]})")
        return model.train()
    model = load(entry.name, init=True)
    if model.architecture.initialise is not None:
        model.architecture.initialise(model.network)
    return model.train()


def make_optimizer(config: TrainConfig, model: SeparationModel) -> torch.optim.Optimizer:
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(model.network.parameters(), lr=config.lr)
    return torch.optim.Adam(model.network.parameters(), lr=config.lr)


def autocast_for(config: TrainConfig, device: torch.device):
    """Mixed precision as `zoo separate --precision` offers it: bf16 on CUDA and on the CPU, fp16 on CUDA only
    (CPUs have no fast float16 convolutions, and float16 needs the gradient scaler GPUs use)."""
    if config.precision == "fp32":
        return contextlib.nullcontext()
    if device.type == "cpu" and config.precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    if device.type != "cuda":
        raise ConfigError(f"--precision {config.precision} needs a CUDA device; use fp32 or bf16 on the CPU")
    return torch.autocast("cuda", dtype=torch.bfloat16 if config.precision == "bf16" else torch.float16)


def compute_loss(model: SeparationModel, network, mixture: Tensor, targets: Tensor, loss: str, autocast) -> Tensor:
    """Loss of one batch: ``mixture`` ``[B, 2, N]``, ``targets`` ``[B, stems, 2, N]`` in the model's stem order.

    ``network`` is the network to run (the model's own, or its DDP wrapper); the spectrogram API of the model
    does everything around it, so training sees exactly what separation sees.
    """
    mixture_spec = model.stft(mixture)
    image = model.framing(mixture_spec)
    with autocast:
        estimate = network(image)
    estimate = model.output_rule(estimate.float(), image)
    if loss == "spec-mse":
        batch, stems = targets.shape[:2]
        target_images = model.to_image(targets.reshape(batch * stems, *targets.shape[2:]))
        return F.mse_loss(estimate, target_images.reshape(estimate.shape))
    return F.l1_loss(model.from_image(estimate, mixture.shape[-1], mixture_spec), targets)


class Trainer:
    def __init__(self, config: TrainConfig, context: distributed.Context, resume: bool, log: Log):
        self.config = config
        self.context = context
        self.run = Path(config.output)
        self.log_line = log if context.is_main else (lambda message: None)
        self.entry = get_entry(config.model)
        random.seed(config.seed + context.rank)
        np.random.seed(config.seed + context.rank)
        torch.manual_seed(config.seed)  # the same initial weights on every rank
        self.model = model_to_train(config, self.log_line).to(context.device)
        self.chunk = self.model.settings.window_samples
        self.data: TrackSet = split_tracks(
            Path(config.musdb), self.model.sample_rate, self.chunk, config.valid_tracks
        )
        distributed.main_first(self.data.prepare, context)
        self.optimizer = make_optimizer(config, self.model)
        self.autocast = autocast_for(config, context.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=config.precision == "fp16")
        self.state = RunState()
        torch.manual_seed(config.seed + context.rank)
        if resume:
            self._restore()
        self.network = distributed.wrap(self.model.network, context)
        self.model.network = distributed.unwrap(self.network)  # SyncBatchNorm conversion may replace modules

    # ------------------------------------------------------------------------------------------ checkpoints

    def _restore(self) -> None:
        payload = checkpoint.load(checkpoint.checkpoint_dir(self.run) / checkpoint.LAST)
        self.model.network.load_state_dict(_network_state(payload))
        self.optimizer.load_state_dict(payload["optimizer"])
        if payload["scaler"]:
            self.scaler.load_state_dict(payload["scaler"])
        states = payload["rng"]
        checkpoint.restore_rng(states[min(self.context.rank, len(states) - 1)])
        self.state = RunState(**payload["state"])
        self.log_line(f"resumed {self.run} at step {self.state.step}")

    def _save(self) -> None:
        distributed.sync_buffers(self.model.network, self.context)
        rng = distributed.gather(checkpoint.capture_rng(), self.context)
        if self.context.is_main:
            checkpoint.save(
                checkpoint.checkpoint_dir(self.run) / checkpoint.LAST,
                {
                    "network": self.model.network.state_dict(),
                    "optimizer": self.optimizer.state_dict(),
                    "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
                    "rng": rng,
                    "state": self.state.as_dict(),
                },
            )

    # ------------------------------------------------------------------------------------------ validation

    def validate(self) -> float:
        """Median validation SDR; validation tracks are shared out over the ranks."""
        distributed.sync_buffers(self.model.network, self.context)
        self.model.eval()
        mine = self.data.valid[self.context.rank :: self.context.world_size]
        scores = {track.name: track_sdr(self.model, track, self.config.valid_seconds) for track in mine}
        self.model.train()
        per_track = {name: value for part in distributed.gather(scores, self.context) for name, value in part.items()}
        value = median_sdr(per_track)
        improved = not math.isnan(value) and value > self.state.best_sdr
        if improved:
            self.state.best_sdr, self.state.best_step, self.state.stale = value, self.state.step, 0
            if self.context.is_main:
                checkpoint.save(
                    checkpoint.checkpoint_dir(self.run) / checkpoint.BEST,
                    {"network": self.model.network.state_dict(), "step": self.state.step, "sdr": value},
                )
        else:
            self.state.stale += 1
        self.state.history.append({"step": self.state.step, "sdr": value, "tracks": per_track})
        self._record({"step": self.state.step, "valid_sdr": value, "tracks": per_track})
        self.log_line(
            f"step {self.state.step}: validation SDR {value:.3f} dB over {len(per_track)} tracks"
            + (" (best)" if improved else f" (best {self.state.best_sdr:.3f} dB at step {self.state.best_step})")
        )
        return value

    # ------------------------------------------------------------------------------------------ the loop

    def _record(self, entry: dict) -> None:
        if self.context.is_main:
            with open(self.run / LOG_FILE, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry) + "\n")

    def _loader(self) -> DataLoader:
        dataset = RandomMixes(
            self.data.train, self.model.stems, self.chunk, self.config.seed,
            gain=self.config.gain_augment, swap=self.config.swap_augment,
        )
        sampler = StepSampler(self.state.step, self.config.batch_size, self.context.rank, self.context.world_size)
        return DataLoader(
            dataset,
            batch_size=self.config.batch_size,
            sampler=sampler,
            num_workers=self.config.workers,
            pin_memory=self.context.device.type == "cuda",
        )

    def _step(self, mixture: Tensor, target: Tensor) -> float:
        device = self.context.device
        mixture, target = mixture.to(device, non_blocking=True), target.to(device, non_blocking=True)
        loss = compute_loss(self.model, self.network, mixture, target, self.config.loss, self.autocast)
        mean = distributed.mean_over_ranks(loss.detach(), self.context).item()
        if not math.isfinite(mean):
            last = checkpoint.checkpoint_dir(self.run) / checkpoint.LAST
            kept = f"the last good checkpoint {last} is kept" if last.is_file() else "no checkpoint was saved yet"
            raise ZooError(
                f"training stopped: the loss is {mean} at step {self.state.step + 1}; {kept}. "
                "Check the data, or resume with a lower --lr or with --clip-grad",
                exit_code=1,
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.config.clip_grad is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.network.parameters(), self.config.clip_grad)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.state.step += 1
        return mean

    def fit(self) -> str:
        """Train until ``steps`` or early stopping; returns why it stopped."""
        config = self.config
        validated = {entry["step"] for entry in self.state.history}
        if self.state.step not in validated:
            self.validate()
            self._save()
        if self.state.step >= config.steps:
            return f"reached {config.steps} steps"
        started, first_step = time.perf_counter(), self.state.step
        for mixture, target in self._loader():
            loss = self._step(mixture, target)
            step = self.state.step
            self._record({"step": step, "loss": loss})
            if step % PRINT_EVERY == 0:
                rate = (step - first_step) * config.batch_size * self.context.world_size / (time.perf_counter() - started)
                self.log_line(f"step {step}: loss {loss:.6g} ({rate:.2f} segments/s)")
            finished = step >= config.steps
            if step % config.valid_every == 0 or finished:
                self.validate()
            patience_spent = config.patience > 0 and self.state.stale >= config.patience
            if step % config.checkpoint_interval == 0 or finished or patience_spent:
                self._save()
            if finished:
                return f"reached {config.steps} steps"
            if patience_spent:
                return f"early stop: no improvement in {config.patience} validations"
        raise AssertionError("the sampler is endless")

    # ------------------------------------------------------------------------------------------ the result

    def export(self) -> tuple[Path, Path]:
        """``model.safetensors`` (the best validated weights) and ``card.toml``; rank 0 only."""
        best_path = checkpoint.checkpoint_dir(self.run) / checkpoint.BEST
        if best_path.is_file():
            best = checkpoint.load(best_path)
        else:  # no validation gave a defined SDR: the final weights
            best = {"network": self.model.network.state_dict(), "step": self.state.step, "sdr": math.nan}
        settings = self.model.settings
        stft_json = json.dumps(settings.as_dict(), sort_keys=True)
        config = self.config
        sdr = float(best["sdr"])
        metadata = {
            "model": config.card_name,
            "variant": config.run_name,
            "base_model": self.entry.name,
            "stft": stft_json,
            "steps": str(best["step"]),
            "valid_sdr": repr(sdr),
            "init": config.init or "",
            "torch_version": torch.__version__,
        }
        write_safetensors(self.run / WEIGHTS_FILE, best["network"], metadata)
        data = self.data
        origin = (
            f"zoo train: {self.entry.name} "
            + (f"fine-tuned from {config.init}" if config.init else "from scratch")
            + f", best of {self.state.step} steps at step {best['step']}, batch {config.batch_size} x "
            f"{self.context.world_size} process(es), {len(data.train)} training tracks"
        )
        notes = f"validation SDR {sdr:.3f} dB on {len(data.valid)} tracks ({AGGREGATION})"
        license_ = ""
        if config.init:
            released = self.entry.variants.get(split_name(config.init)[1] or self.entry.default_variant or "")
            license_ = released.license if released else ""
        training = {
            "config": {key: value for key, value in config_dict(config).items() if value is not None},
            "data": {
                "root": str(Path(config.musdb).resolve()),
                "layout": data.layout,
                "train_tracks": [track.name for track in data.train],
                "valid_tracks": [track.name for track in data.valid],
                "skipped": data.skipped,
                "mixture": "sum of the four stems",
            },
            "steps": self.state.step,
            "best_step": int(best["step"]),
            "valid_sdr": sdr,
            "valid_aggregation": AGGREGATION + (
                f", middle {config.valid_seconds} s of each track" if config.valid_seconds else ", whole tracks"
            ),
            "history": [{"step": h["step"], "sdr": h["sdr"]} for h in self.state.history],
        }
        card = write_card(
            self.run, self.entry, config.card_name, config.run_name, settings, count_parameters(self.model),
            origin, notes, license_, training,
        )
        return self.run / WEIGHTS_FILE, card


def config_dict(config: TrainConfig) -> dict:
    values = asdict(config)
    values["valid_tracks"] = list(values["valid_tracks"])
    return values


def train(config: TrainConfig, resume: bool = False, log: Log = print) -> Summary:
    """Run (or continue, with ``resume``) the training ``config`` describes, in this process's rank."""
    config.validate()
    last = checkpoint.checkpoint_dir(Path(config.output)) / checkpoint.LAST
    if not resume and last.exists():
        raise ZooError(f"{config.output} already holds a training run; continue it with --resume, or choose another -o")
    context = distributed.setup(config.device)
    try:
        trainer = Trainer(config, context, resume, log)
        if context.is_main:
            Path(config.output).mkdir(parents=True, exist_ok=True)
            config.save(Path(config.output))
        for line in trainer.data.skipped:
            trainer.log_line(f"warning: skipped {line}")
        stopped = trainer.fit()
        distributed.sync_buffers(trainer.model.network, context)
        digest = distributed.weights_digest(trainer.model.network.state_dict())
        weights = card = None
        if context.is_main:
            weights, card = trainer.export()
        distributed.wait_for_all(context)
        state = trainer.state
        return Summary(state.step, state.best_step, state.best_sdr, stopped, weights, card, trainer.data.skipped, digest)
    finally:
        distributed.teardown()


def _network_state(payload: dict) -> dict:
    """The network's state_dict in a training checkpoint (under `LEGACY_NETWORK_NAME` before release 0.2)."""
    return payload["network"] if "network" in payload else payload[LEGACY_NETWORK_NAME]
