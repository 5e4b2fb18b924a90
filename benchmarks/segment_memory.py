"""The segment memory estimate (`zoo_core.memory`) against real forwards (printed, never asserted).

For each model and segment, a fresh process loads the model as ``zoo separate`` runs it (`optimize`, float32,
initialised weights: memory does not depend on weight values), takes `zoo_core.memory`'s line (two short
calibration forwards, extrapolated to the segment), then runs one forward of that segment and reports

- line: the extrapolated count, and estimate: the line times `zoo_core.memory.MARGIN`, what the check uses;
- counted: the live-tensor peak of that very forward (the line's own way of counting, not extrapolated);
- RSS: the growth of the process's peak resident memory during the forward (``VmHWM``, reset just before it
  through ``/proc/self/clear_refs``; glibc's default allocator, so freed blocks go back to the kernel).

    python benchmarks/segment_memory.py                                  # tdc-17 and tfc-tdf-v3-small, 1.5/6/12 s
    python benchmarks/segment_memory.py --models tfc-tdf-large --seconds 3 6 --json memory.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys

CHILD = r"""
import json, sys
import torch
import zoo_core
from zoo_core.inference import optimize
from zoo_core.memory import MARGIN, _LiveBytes, measure_peak, padded_samples
from zoo_core.separation import SeparationSettings

name, seconds = sys.argv[1], float(sys.argv[2])
torch.set_num_threads(1)
model = optimize(zoo_core.load(name, init=True).eval())
segment, _ = SeparationSettings(segment=seconds).geometry(model)
line = measure_peak(model).bytes(padded_samples(model, segment))

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024

mixture = torch.zeros(1, 2, segment)
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")  # reset VmHWM to the current RSS
before = status("VmRSS")
with torch.inference_mode():
    model(mixture)
rss = status("VmHWM") - before
counter = _LiveBytes()
with torch.inference_mode(), counter.mode:
    model(mixture)
print(json.dumps({"model": name, "seconds": seconds, "segment": segment, "line": line, "estimate": MARGIN * line,
                  "counted": counter.peak, "rss": rss}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tdc-17", "tfc-tdf-v3-small"])
    parser.add_argument("--seconds", nargs="+", type=float, default=[1.5, 6.0, 12.0])
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "ZOO_NO_ALLOCATOR_TUNING": "1"}
    rows = []
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores; MB = 10^6 bytes; one forward, batch 1")
    print(f"{'model':<20} {'segment':>9} {'line':>10} {'counted':>10} {'RSS':>10} {'RSS/line':>8} {'estimate':>10}")
    for name in args.models:
        for seconds in args.seconds:
            done = subprocess.run([sys.executable, "-c", CHILD, name, str(seconds)], capture_output=True, text=True,
                                  env=environment, check=True)
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{name:<20} {seconds:>7.1f} s {row['line'] / 1e6:>7.1f} MB {row['counted'] / 1e6:>7.1f} MB "
                  f"{row['rss'] / 1e6:>7.1f} MB {row['rss'] / row['line']:>8.2f} {row['estimate'] / 1e6:>7.1f} MB")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)


if __name__ == "__main__":
    main()
