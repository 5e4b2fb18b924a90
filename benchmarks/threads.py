"""Separation time by torch thread count: ``--threads 1``, 2, ... and the default (printed, never asserted).

Each setting runs in a fresh process (torch fixes its inter-op pool at the first parallel work): tdc-17 (or
``--model``) with initialised weights separates the first ``--seconds`` of a synthetic stereo track with
`zoo_core.separation.separate`, after one warm-up segment; the best and the median of ``--repeats`` runs are
printed with the machine's load average, since on a shared machine the answer depends on the other processes.

    python benchmarks/threads.py                        # threads 1, 2 and the default
    python benchmarks/threads.py --threads 1 2 4 --model tfc-tdf-v3-small --seconds 20
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, statistics, sys, time
import torch
import zoo_core
from zoo_core.inference import optimize
from zoo_core.separation import separate
from zoo_core.threads import apply_threads, default_threads

name, seconds, repeats, threads = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
threads = default_threads() if threads == "default" else int(threads)
apply_threads(threads)
model = optimize(zoo_core.load(name, init=True).eval())
torch.manual_seed(0)
mixture = torch.randn(2, int(seconds * model.sample_rate)) * 0.1
separate(model, mixture[:, : model.training_segment()], model.sample_rate)  # warm-up
times = []
for _ in range(repeats):
    began = time.perf_counter()
    separate(model, mixture, model.sample_rate)
    times.append(time.perf_counter() - began)
print(json.dumps({"threads": threads, "best": min(times), "median": statistics.median(times)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tdc-17")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", nargs="+", default=["1", "2", "default"])
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    environment = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores; {args.model}, "
          f"{args.seconds:g} s of audio, {args.repeats} runs each")
    rows = []
    for setting in args.threads:
        load = os.getloadavg()[0]
        done = subprocess.run([sys.executable, "-c", CHILD, args.model, str(args.seconds), str(args.repeats), setting],
                              capture_output=True, text=True, env=environment, check=True)
        row = {**json.loads(done.stdout.strip().splitlines()[-1]), "setting": setting, "load_before": load}
        rows.append(row)
        print(f"threads {setting:>7} ({row['threads']}): best {row['best']:.2f} s, median {row['median']:.2f} s "
              f"(real-time factor {row['median'] / args.seconds:.3f}); load average before {load:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
