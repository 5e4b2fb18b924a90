"""Training throughput of every paper model: segments (training windows) per second of `zoo train`'s step.

    python benchmarks/train_throughput.py [--models tdc-17 tfc-tdf-large] [--batch-size 2] [--steps 3]
                                          [--device auto] [--precision fp32] [--threads N]

One step is what `zoo_core.train.loop` does: STFT → framing → U-Net → loss (spec-mse) → backward → Adam
step, on a batch of one training window per segment (the model's own ``window_samples``). Inputs are random
noise: the arithmetic does not depend on the content, and data loading runs in worker processes in real
training. One untimed warm-up step, then the median of ``--steps`` timed steps. On a GPU the default batch is
8 and ``--precision bf16``/``fp16`` times mixed precision.
"""

from __future__ import annotations

import zoo_core
import argparse
import statistics
import time

import torch

from zoo_core import count_parameters, get_entry, list_models
from zoo_core.registry import architecture_for
from zoo_core.train.config import TrainConfig
from zoo_core.train.loop import autocast_for, compute_loss

PAPER_MODELS = ("tdf-17", "tdc-17", "tfc-17", "tfc-tdf-17", "tfc-tdf-small", "tfc-tdf-small-mag", "tfc-tdf-large",
                "tdc-rnn", "tfc-rnn")


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_seconds(name: str, batch_size: int, steps: int, device: torch.device, precision: str) -> float:
    model = zoo_core.load(name, init=True).to(device).train()
    initialise = architecture_for(get_entry(name)).initialise
    if initialise is not None:
        initialise(model.network)
    config = TrainConfig(model=name, musdb="", output="", precision=precision)
    autocast = autocast_for(config, device)
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")
    optimizer = torch.optim.Adam(model.network.parameters(), lr=1e-3)
    samples = model.settings.window_samples
    generator = torch.Generator().manual_seed(0)
    mixture = torch.randn(batch_size, 2, samples, generator=generator).mul(0.1).to(device)
    target = torch.randn(batch_size, len(model.stems), 2, samples, generator=generator).mul(0.05).to(device)
    times = []
    for index in range(steps + 1):
        synchronise(device)
        began = time.perf_counter()
        loss = compute_loss(model, model.network, mixture, target, "spec-mse", autocast)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        synchronise(device)
        if index:  # the first step warms up allocators and kernels
            times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=[m for m in PAPER_MODELS if m in list_models()])
    parser.add_argument("--batch-size", type=int, help="segments per step (default: 2 on CPU, 8 on a GPU)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per model")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (CPU)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if use_cuda else "cpu")
    batch = args.batch_size or (8 if use_cuda else 2)
    where = torch.cuda.get_device_name(device) if use_cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"training throughput on {where}, torch {torch.__version__}, batch {batch}, {args.precision}, "
          f"median of {args.steps} steps")
    print(f"{'model':<18} {'parameters':>10} {'window (samples)':>16} {'s/step':>8} {'segments/s':>10} {'audio s/s':>9}")
    for name in args.models:
        seconds = step_seconds(name, batch, args.steps, device, args.precision)
        model = zoo_core.load(name, init=True)
        window = model.settings.window_samples
        rate = batch / seconds
        print(f"{name:<18} {count_parameters(model):>10,} {window:>16,} {seconds:>8.3f} {rate:>10.2f} "
              f"{rate * window / model.sample_rate:>9.2f}")


if __name__ == "__main__":
    main()
