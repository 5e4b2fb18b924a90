"""Peak memory of file separation: a 10-minute input against a 1-minute one (printed, never asserted).

`zoo separate` streams (decode, resample, separate and write block by block), so its peak RSS should not grow
with the track's length. Each length is separated in a fresh process, which reports its peak RSS
(``ru_maxrss``) and the RSS it had before separating (interpreter, torch and the model). Synthetic stereo
44.1 kHz 16-bit WAV input; the model's initialised weights are used because compute and memory do not depend
on weight values.

    python benchmarks/separation_memory.py                 # tdc-17, 1 vs 10 minutes
    python benchmarks/separation_memory.py --minutes 0.5 2 --json memory.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RATE = 44100


def write_synthetic_wav(path: Path, minutes: float) -> None:
    """Chords and noise bursts, written block by block (the parent process never holds the track)."""
    import soundfile as sf

    frames = int(minutes * 60 * RATE)
    rng = np.random.default_rng(0)
    block = RATE * 10
    with sf.SoundFile(path, "w", samplerate=RATE, channels=2, subtype="PCM_16") as out:
        for start in range(0, frames, block):
            t = np.arange(start, min(start + block, frames)) / RATE
            tone = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6, 440.0 * (1 + 0.01 * np.sin(t))))
            noise = 0.05 * rng.standard_normal((t.size, 2)) * (np.sin(2 * np.pi * 2 * t) > 0)[:, None]
            out.write((tone[:, None] + noise).astype(np.float32))


def measure(model_name: str, path: Path, out_dir: Path) -> dict:
    """Runs in a fresh process: separate ``path`` and report memory and time."""
    import torch

    import zoo_core
    from zoo_core.separation import separate_file

    model = zoo_core.load(model_name, init=True).eval()
    before_mb = _rss_now_mb()
    started = time.perf_counter()
    result = separate_file(model, path, out_dir, force=True)
    wall = time.perf_counter() - started
    audio_s = result.frames / result.sample_rate
    return {
        "audio_seconds": audio_s,
        "wall_seconds": wall,
        "realtime_factor": audio_s / wall,
        "rss_before_separation_mb": before_mb,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
    }


def _rss_now_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tdc-17")
    parser.add_argument("--minutes", type=float, nargs=2, default=(1.0, 10.0), metavar=("SHORT", "LONG"))
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)  # internal: MODEL WAV OUT in a child
    args = parser.parse_args()
    if args.measure:
        model_name, path, out_dir = args.measure
        print(json.dumps(measure(model_name, Path(path), Path(out_dir))))
        return
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for minutes in args.minutes:
            source = Path(scratch) / f"synthetic-{minutes:g}min.wav"
            write_synthetic_wav(source, minutes)
            child = subprocess.run(
                [sys.executable, __file__, "--measure", args.model, str(source), str(Path(scratch) / "out")],
                capture_output=True,
                text=True,
                check=True,
            )
            row = {"minutes": minutes, **json.loads(child.stdout.strip().splitlines()[-1])}
            rows.append(row)
            source.unlink()
    ratio = rows[1]["peak_rss_mb"] / rows[0]["peak_rss_mb"]
    print(f"{args.model}, zoo_core.separation.separate_file, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, torch threads {rows[0]['threads']}")
    print(f"{'input':>10} {'wall s':>8} {'x real time':>12} {'RSS before MB':>14} {'peak RSS MB':>12}")
    for row in rows:
        print(
            f"{row['minutes']:>7g} min {row['wall_seconds']:>8.1f} {row['realtime_factor']:>12.2f} "
            f"{row['rss_before_separation_mb']:>14.0f} {row['peak_rss_mb']:>12.0f}"
        )
    print(f"peak RSS {args.minutes[1]:g} min / {args.minutes[0]:g} min: {ratio:.3f} (target <= 1.2)")
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "runs": rows, "peak_rss_ratio": ratio}, indent=2))


if __name__ == "__main__":
    main()
