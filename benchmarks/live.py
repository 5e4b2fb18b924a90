"""Which models separate live on this machine, and with what margin (printed, never asserted).

    python benchmarks/live.py                                   # every registered model, 1 thread
    python benchmarks/live.py --models tdc-17 --latency 0.5 0.25 --threads 2 --json live.json
    python benchmarks/live.py --models tdc-17 --latency 1 0.5 0.25 0.1 --sdr   # + vocal SDR on the MUSDB clip

A live stream (`zoo_core.stream.StreamingSeparator`, what `zoo stream` runs) computes one segment each time a
stride (segment − overlap) of new audio has arrived: that stride is the stream's block. Here 44.1 kHz stereo
blocks of exactly one stride are pushed, so that every push after the first segment runs the model once, and
each push is timed. A model runs live when a block's compute time stays below the block's duration; the
margin is duration / p99 compute. Latency is the stream's fixed latency (segment − 1 frames at the model's
rate); a listener waits that plus one block's compute. Models as `zoo` runs them (`zoo_core.inference.optimize`,
fp32) with initialised weights (compute does not depend on weight values); the input is noise.

``--sdr`` scores each latency setting on the MUSDB18 clip *The Easton Ellises - Falcon 69* with tdc-17's
authors' weights (``ZOO_WEIGHTS_MIRROR`` or the cache): vocal and accompaniment SDR, museval v4, median over
1-s frames. The streamed output equals the offline separation with the same segment (tests/test_stream.py),
so the offline `separate()` is scored.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

RATE = 44100
SHARED = Path(os.environ.get("ZOO_SHARED_DIR", Path(__file__).resolve().parent.parent.parent / "shared"))  # as the tests
CLIP = SHARED / "audio" / "The Easton Ellises - Falcon 69.stem.mp4"


def block_times(model, options, blocks: int) -> dict:
    from zoo_core.stream import StreamingSeparator

    separator = StreamingSeparator(model, RATE, 2, options)
    segment, overlap = options.geometry(model)
    stride = segment - overlap
    priming = -(-segment // stride)  # pushes before every push runs exactly one segment
    rng = np.random.default_rng(0)
    times = []
    for index in range(priming + 1 + blocks):
        block = (rng.standard_normal((stride, 2)) * 0.1).astype(np.float32)
        began = time.perf_counter()
        separator.push(block)
        elapsed = time.perf_counter() - began
        if index > priming:  # the push right after priming warms up allocators and kernels
            times.append(elapsed)
    block_seconds = stride / RATE
    p99 = float(np.percentile(times, 99))
    return {
        "segment_s": round(segment / RATE, 3),
        "overlap_s": round(overlap / RATE, 3),
        "latency_s": round(separator.latency_seconds, 3),
        "block_s": round(block_seconds, 3),
        "compute_median_s": round(statistics.median(times), 4),
        "compute_p99_s": round(p99, 4),
        "margin": round(block_seconds / p99, 2),
        "blocks": len(times),
    }


def latency_options(model, latency):
    from zoo_core.separation import SeparationSettings
    from zoo_core.stream import options_for_latency

    options = SeparationSettings()
    return options if latency is None else options_for_latency(model, latency, RATE, options)


def clip_sdr(latencies: list, clip: Path) -> list[dict]:
    import torch

    from zoo_core.audio import read_stems
    from zoo_core.inference import optimize
    from zoo_core.metrics import sdr
    from zoo_core.separation import separate
    from zoo_core.stream import stream_latency
    import zoo_core

    model = optimize(zoo_core.load("tdc-17:top1"))
    stems, rate = read_stems(clip)
    references = {"vocals": stems["vocals"], "accompaniment": stems["drums"] + stems["bass"] + stems["other"]}
    rows = []
    for latency in latencies:
        options = latency_options(model, latency)
        with torch.inference_mode():
            estimates = separate(model, torch.from_numpy(stems["mixture"]), rate, segment=options.segment,
                                 overlap=options.overlap)
        row = {"latency_setting": "default" if latency is None else latency,
               "latency_s": round(stream_latency(model, rate, options) / rate, 3)}
        for stem, reference in references.items():
            row[f"{stem}_sdr_db"] = round(float(np.nanmedian(sdr([reference.T], [estimates[stem].numpy().T]))), 2)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", help="default: every registered model")
    parser.add_argument("--latency", nargs="*", type=float, default=[],
                        help="also time these latency budgets (seconds), besides each model's default segment")
    parser.add_argument("--blocks", type=int, default=30, help="timed blocks per setting")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (one leaves a core to the audio pipeline; on a shared CPU two threads "
                             "wait on each other's time slices)")
    parser.add_argument("--sdr", action="store_true", help="also score each latency setting on the MUSDB clip")
    parser.add_argument("--clip", type=Path, default=CLIP)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    import zoo_core
    from zoo_core.allocator import tune_allocator
    from zoo_core.inference import optimize

    tune_allocator()
    torch.set_num_threads(args.threads)
    names = args.models or zoo_core.list_models()
    settings = [None, *args.latency]
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{args.threads} thread(s), load average {os.getloadavg()[0]:.1f} at start")
    print(f"{'model':<18} {'setting':>8} {'segment':>8} {'latency':>8} {'block':>6} {'median':>7} {'p99':>7} "
          f"{'margin':>7}  live")
    rows = []
    for name in names:
        model = optimize(zoo_core.load(name, init=True).eval())
        for latency in settings:
            row = {"model": name, "latency_setting": "default" if latency is None else latency,
                   **block_times(model, latency_options(model, latency), args.blocks)}
            rows.append(row)
            print(f"{name:<18} {str(row['latency_setting']):>8} {row['segment_s']:>7.3f}s {row['latency_s']:>7.3f}s "
                  f"{row['block_s']:>5.2f}s {row['compute_median_s']:>6.3f}s {row['compute_p99_s']:>6.3f}s "
                  f"{row['margin']:>6.2f}x  {'yes' if row['margin'] > 1 else 'no'}", flush=True)
    report = {"machine": {"processor": platform.processor(), "cores": os.cpu_count(), "threads": args.threads,
                          "torch": torch.__version__, "load_average_at_start": os.getloadavg()[0]},
              "live": rows}
    if args.sdr:
        report["sdr"] = clip_sdr(settings, args.clip)
        print("\nsetting   latency  vocals SDR  accompaniment SDR   (tdc-17 top1, MUSDB clip, median of 1-s frames)")
        for row in report["sdr"]:
            print(f"{str(row['latency_setting']):>8} {row['latency_s']:>7.3f}s {row['vocals_sdr_db']:>8.2f} dB "
                  f"{row['accompaniment_sdr_db']:>12.2f} dB")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
