"""Speed, memory and FLOP efficiency of the paper's models in every deployment form, against Open-Unmix and HT-Demucs.

    python benchmarks/run.py [--quick] [--json out.json] [--models tdc-17 tfc-tdf-large ...]

Every configuration separates the same synthetic stereo 44.1 kHz input (60 s; 10 s with ``--quick``) in its own
worker process. Workers of one group (a paper model's forms, or the peers) run interleaved: two warm-up rounds,
then ``--repeats`` rounds in which every worker separates once; the table shows the median. Peak RSS is each
worker's own (model, input and separation). FLOPs are counted with ``torch.utils.flop_counter`` on one
representative model call of the reference float32 model and scaled by the number of calls the separation
makes (overlap included); an LSTM, which the counter does not see, is counted analytically. Achieved GFLOP/s is
compared with this machine's float32 matmul GFLOP/s, measured in the same run.

Forms: ``eager`` (`zoo_core.separation.separate`, default segment and overlap) of the reference model (with
glibc's default malloc, ``reference-malloc``, and with `zoo_core.allocator.tune_allocator` as every other form),
of `zoo_core.inference.optimize` (float32) and of its bfloat16 variant; ``torchscript`` (the optimised model
exported with `zoo_core.export.torchscript`, loaded with ``torch.jit.load``, same segment/overlap);
``cpp`` (examples/cpp_host, if built, on that file; its own timing, start-up reported apart); ``aoti`` (the
AOTInductor package of optimize()'s core through `zoo_core.hosts` and the same `separate`; compiling takes
minutes, so ``--quick`` does it for tdc-17 only) and ``cpp-aoti`` (the C++ host on that package); ``onnx`` (`zoo_core.export.onnx`'s file of the core, run by ONNX Runtime's CPU provider with
torch's thread count, through `zoo_core.hosts` and the same `separate`). Peers: see benchmarks/peers.py (install them with the command given there).
Separately: peak RSS of streaming file separation (`separate_file`) of a 10-minute against a 1-minute track,
each in a fresh process, and `zoo_core.metrics.sdr` against museval on one 3-minute estimate.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Optional

import numpy as np
import zoo_core
import torch

HERE = Path(__file__).resolve().parent
HOST = HERE.parent / "examples" / "cpp_host" / "build" / "zoo_host"
RATE = 44100
PAPER_MODELS = ["tdc-17", "tfc-17", "tfc-tdf-17", "tfc-tdf-small", "tfc-tdf-large", "tdc-rnn"]
# reference-malloc: the reference model with glibc's malloc defaults (every other worker calls tune_allocator)
BUILDS = ("reference-malloc", "reference", "optimized", "bf16")
WARMUP_ROUNDS = 2
SPEED_REFERENCE = "optimized"  # the fp32 eager form that the other forms and the peers are compared with


# ---------------------------------------------------------------------------------------------------- the input
def synthetic_mixture(seconds: float) -> torch.Tensor:
    """A deterministic stereo ``[2, N]`` float32 mixture: chords and noise bursts (compute does not depend on it)."""
    t = torch.arange(int(seconds * RATE), dtype=torch.float64) / RATE
    tone = sum(0.1 * torch.sin(2 * torch.pi * f * t) for f in (220.0, 277.2, 329.6, 440.0))
    noise = 0.05 * torch.randn(2, t.numel(), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return (tone + noise * (torch.sin(2 * torch.pi * 2 * t) > 0)).float()


def build_model(name: str, build: str) -> torch.nn.Module:
    import zoo_core
    from zoo_core.inference import optimize

    torch.manual_seed(0)
    model = zoo_core.load(name, init=True).eval()
    if build.startswith("reference"):
        return model
    return optimize(model, torch.bfloat16 if build == "bf16" else torch.float32)


def geometry(model) -> tuple[int, int]:
    from zoo_core.separation import SeparationSettings

    return SeparationSettings().geometry(model)


# ---------------------------------------------------------------------------------------------- worker process
def own_peak_rss_mb() -> float:
    """This process's own peak RSS. ``ru_maxrss`` would not do: Linux carries the parent's peak over into a
    child across fork and exec, and the benchmark's parent holds models; ``VmHWM`` belongs to this image alone."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


LAUNCHER = """import os, resource, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(usage.ru_maxrss, file=sys.stderr)
sys.exit(os.waitstatus_to_exitcode(status))
"""  # a small process forks the host, so the host's peak RSS is its own (see own_peak_rss_mb)


def make_runner(spec: dict[str, Any], mixture: torch.Tensor):
    """The one call a worker times: separate ``mixture`` ``[2, N]`` once."""
    kind = spec["kind"]
    if kind == "peer":
        import peers

        _, separate_peer = peers.PEERS[spec["peer"]]()
        return lambda: separate_peer(mixture[None])
    from zoo_core.separation import separate

    if kind == "eager":
        model = build_model(spec["model"], spec["build"])
        return lambda: separate(model, mixture, RATE)
    if kind == "torchscript":
        from zoo_core.export.deprecation import torchscript_deprecation_silenced

        with torchscript_deprecation_silenced():
            scripted = torch.jit.load(spec["path"])
        segment, overlap = spec["segment"], spec["overlap"]
        return lambda: scripted.separate_chunked(mixture[None], segment, overlap, 1)
    if kind == "onnx":
        import zoo_core

        hosted = zoo_core.load(spec["path"])  # ONNX Runtime session, torch.get_num_threads() threads
        return lambda: separate(hosted, mixture, RATE)
    if kind == "aoti":  # the package holds optimize()'s core; zoo_core.hosts does the STFT around it
        import zoo_core

        hosted = zoo_core.load(spec["path"])
        return lambda: separate(hosted, mixture, RATE)
    raise ValueError(f"unknown worker kind {kind!r}")


def worker(spec: dict[str, Any]) -> None:
    """Serve ``run`` / ``quit`` lines on stdin; answer one JSON line each on stdout."""
    from zoo_core.allocator import tune_allocator

    tuned = tune_allocator() if spec.get("tune_allocator", True) else False
    torch.set_grad_enabled(False)
    run = make_runner(spec, synthetic_mixture(spec["seconds"]))
    print(json.dumps({"ready": True, "allocator_tuned": tuned}), flush=True)
    for line in sys.stdin:
        if line.strip() == "run":
            with torch.inference_mode():
                began = time.perf_counter()
                run()
                print(json.dumps({"seconds": time.perf_counter() - began}), flush=True)
        else:
            break
    print(json.dumps({"peak_rss_mb": own_peak_rss_mb()}), flush=True)


class Worker:
    def __init__(self, spec: dict[str, Any]):
        self.spec = spec
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.ready = self._answer()

    def _answer(self) -> dict[str, Any]:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.spec} died (see its error output above)")
        return json.loads(line)

    def run(self) -> float:
        self.process.stdin.write("run\n")
        self.process.stdin.flush()
        return self._answer()["seconds"]

    def close(self) -> float:
        self.process.stdin.write("quit\n")
        self.process.stdin.flush()
        peak = self._answer()["peak_rss_mb"]
        self.process.wait()
        return peak


class HostRun:
    """The C++ host as a configuration: one program run per round; its in-process separation time counts."""

    def __init__(self, model_file: Path, wav: Path, out: Path, segment: int, overlap: int):
        self.command = [sys.executable, "-c", LAUNCHER, str(HOST), str(model_file), str(wav), str(out),
                        "--segment-samples", str(segment), "--overlap-samples", str(overlap), "--batch-size", "1"]
        self.peak_rss_mb = 0.0
        self.program_seconds: list[float] = []
        self.startup_seconds: list[float] = []  # loading the model and reading the input, as the host reports it

    def run(self) -> float:
        import re

        began = time.perf_counter()
        done = subprocess.run(self.command, capture_output=True, text=True)
        self.program_seconds.append(time.perf_counter() - began)
        if done.returncode != 0:
            raise RuntimeError(f"C++ host failed: {done.stderr[-2000:]}")
        self.peak_rss_mb = max(self.peak_rss_mb, int(done.stderr.strip().splitlines()[-1]) / 1024)
        self.startup_seconds.append(float(re.search(r"start-up ([0-9.e+-]+) s", done.stdout).group(1)))
        return float(re.search(r"audio in ([0-9.e+-]+) s", done.stdout).group(1))

    def close(self) -> float:
        return self.peak_rss_mb


def timed_rounds(runs: dict[str, Any], repeats: int) -> dict[str, list[float]]:
    """Two warm-up rounds (TorchScript's profiling executor optimises on its second call), then ``repeats``
    rounds; every configuration runs once per round, interleaved."""
    for _ in range(WARMUP_ROUNDS):
        for run in runs.values():
            run.run()
    times: dict[str, list[float]] = {key: [] for key in runs}
    for _ in range(repeats):
        for key, run in runs.items():
            times[key].append(run.run())
    return times


# -------------------------------------------------------------------------------------------------------- FLOPs
def _rnn_flops(module: torch.nn.Module, inputs: tuple, _output: Any, tally: list[int]) -> None:
    """Multiply-adds of an LSTM (which FlopCounterMode does not see on CPU): 4 gates, input and recurrent."""
    if not isinstance(module, torch.nn.LSTM):
        return
    x = inputs[0]
    steps, batch = (x.shape[1], x.shape[0]) if module.batch_first else (x.shape[0], x.shape[1] if x.dim() == 3 else 1)
    hidden = module.hidden_size
    directions = 2 if module.bidirectional else 1
    features = module.input_size
    for _layer in range(module.num_layers):
        tally[0] += 2 * 4 * hidden * (features + hidden) * steps * batch * directions
        features = hidden * directions


def count_flops(call, modules: torch.nn.Module) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    tally = [0]
    hooks = [m.register_forward_hook(lambda *a: _rnn_flops(*a, tally)) for m in modules.modules()]
    try:
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            call()
    finally:
        for hook in hooks:
            hook.remove()
    return counter.get_total_flops() + tally[0]


def paper_model_flops(name: str, samples: int) -> float:
    """FLOPs of separating ``samples`` samples: one full segment's model call times the number of segments."""
    from zoo_core.chunking import segment_starts

    model = build_model(name, "reference")
    segment, overlap = geometry(model)
    per_segment = count_flops(lambda: model(torch.zeros(1, 2, segment)), model)
    return per_segment * len(segment_starts(samples, segment, overlap))


def peer_flops(peer: str, samples: int) -> float:
    import peers

    model, separate_peer = peers.PEERS[peer]()
    if peer == "htdemucs":  # apply_model runs the network on segments of the training length with 25% overlap
        segment = int(model.segment * RATE)
        stride = int(0.75 * segment)
        calls = len(range(0, samples, stride))
        return count_flops(lambda: model(torch.zeros(1, 2, segment)), model) * calls
    seconds = 10  # the LSTM separator is linear in time: count 10 s and scale
    return count_flops(lambda: separate_peer(torch.zeros(1, 2, seconds * RATE)), model) * samples / (seconds * RATE)


# ------------------------------------------------------------------------------------------------------ machine
def matmul_gflops(size: int = 4096, repeats: int = 5) -> float:
    """The machine's float32 peak as a large matmul reaches it: best of ``repeats`` (a peak, not a typical value)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - began)
    return 2 * size**3 / min(times) / 1e9


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "avx512_bf16": "avx512_bf16" in flags,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg()[0],
    }


# ------------------------------------------------------------------------------------------- exports (parent)
def export_forms(name: str, work: Path, with_aoti: bool, with_onnx: bool = True,
                 with_torchscript: bool = True) -> dict[str, Path]:
    import zoo_core
    from zoo_core.export.torchscript import export_torchscript

    entry = zoo_core.get_entry(name)
    files: dict[str, Path] = {}
    if with_torchscript:
        files["torchscript"] = work / f"{name}.ts.pt"
        # the exporter applies zoo_core.inference.optimize itself
        export_torchscript(build_model(name, "reference"), entry, files["torchscript"])
    if with_aoti:
        from zoo_core.errors import ZooError
        from zoo_core.export.aoti import export_aoti

        reference = build_model(name, "reference")
        segment, overlap = geometry(reference)
        try:
            export_aoti(reference, entry, work / f"{name}.pt2", segment=segment, overlap=overlap)
            files["aoti"] = work / f"{name}.pt2"
        except ZooError as exc:
            print(f"  {name}: no AOTInductor form ({exc})", flush=True)
    if with_onnx:
        from zoo_core.errors import ZooError
        from zoo_core.export.onnx import export_onnx

        try:
            export_onnx(build_model(name, "reference"), entry, work / f"{name}.onnx")
            files["onnx"] = work / f"{name}.onnx"
        except ZooError as exc:
            print(f"  {name}: no ONNX form ({exc})", flush=True)
    return files


def write_wav(path: Path, mixture: torch.Tensor) -> None:
    import soundfile

    soundfile.write(path, mixture.T.numpy(), RATE, subtype="FLOAT")


# ------------------------------------------------------------------------------------------------------ memory
def memory_child(model_name: str, wav: str, out: str) -> None:
    """In a fresh process: stream-separate ``wav`` with the optimised model, print the peak RSS."""
    from zoo_core.allocator import tune_allocator
    from zoo_core.separation import separate_file

    tune_allocator()
    model = build_model(model_name, "optimized")
    began = time.perf_counter()
    separate_file(model, wav, out, force=True)
    print(json.dumps({"peak_rss_mb": own_peak_rss_mb(), "seconds": time.perf_counter() - began}))


def memory_ratio(model_name: str, work: Path) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    from separation_memory import write_synthetic_wav

    peaks = {}
    for minutes in (1, 10):
        wav = work / f"track-{minutes}min.wav"
        write_synthetic_wav(wav, minutes)
        child = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--memory-child", model_name, str(wav),
                                str(work / "separated")], capture_output=True, text=True, check=True)
        peaks[minutes] = json.loads(child.stdout.strip().splitlines()[-1])
        wav.unlink()
    return {"model": model_name, "form": "zoo_core.separation.separate_file, optimize() float32",
            "peak_rss_1min_mb": peaks[1]["peak_rss_mb"], "peak_rss_10min_mb": peaks[10]["peak_rss_mb"],
            "ratio": peaks[10]["peak_rss_mb"] / peaks[1]["peak_rss_mb"]}


# ---------------------------------------------------------------------------------------------------- fast SDR
def sdr_comparison(seconds: float = 180.0) -> dict[str, Any]:
    """One 3-minute two-source estimate, scored by zoo_core.metrics.sdr and by museval."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import museval
    from zoo_core.metrics import sdr

    rng = np.random.default_rng(0)
    samples = int(seconds * RATE)
    references = rng.standard_normal((2, samples, 2)) * np.linspace(0.2, 1.0, samples)[None, :, None]
    crosstalk = 0.3 * references[::-1]
    estimates = 0.9 * references + crosstalk + 0.05 * rng.standard_normal(references.shape)
    began = time.perf_counter()
    fast = sdr(references, estimates)
    fast_seconds = time.perf_counter() - began
    began = time.perf_counter()
    slow = museval.evaluate(references, estimates, win=RATE, hop=RATE)[0]
    museval_seconds = time.perf_counter() - began
    return {"seconds_of_audio": seconds, "fast_seconds": fast_seconds, "museval_seconds": museval_seconds,
            "time_ratio": museval_seconds / fast_seconds, "max_abs_delta_db": float(np.nanmax(np.abs(fast - slow)))}


# ------------------------------------------------------------------------------------------------------ driver
def row(name: str, variant: str, build: str, times: list[float], peak: float, flops: float, audio_s: float,
        peak_gflops: float, **extra: Any) -> dict[str, Any]:
    wall = statistics.median(times)
    achieved = flops / wall / 1e9
    return {"name": name, "variant": variant, "build": build, "wall_seconds": wall, "all_seconds": times,
            "realtime_factor": audio_s / wall, "peak_rss_mb": peak, "gflop_per_audio_s": flops / audio_s / 1e9,
            "achieved_gflop_s": achieved, "fraction_of_matmul_peak": achieved / peak_gflops, **extra}


def run_group(specs: dict[tuple[str, str, str], Any], repeats: int) -> dict[tuple[str, str, str], tuple[list[float], float]]:
    runs = {key: (Worker(spec) if isinstance(spec, dict) else spec) for key, spec in specs.items()}
    try:
        times = timed_rounds(runs, repeats)
    finally:
        peaks = {key: run.close() for key, run in runs.items()}
    return {key: (times[key], peaks[key]) for key in runs}


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    from zoo_core.allocator import tune_allocator

    tune_allocator()
    torch.set_grad_enabled(False)
    seconds = args.seconds or (10.0 if args.quick else 60.0)
    samples = int(seconds * RATE)
    info = machine()
    info["matmul_gflop_s"] = matmul_gflops()
    peak = info["matmul_gflop_s"]
    print(f"{info['cpu']}, {info['cores']} cores, torch {info['torch']}, {info['threads']} threads, "
          f"fp32 matmul {peak:.0f} GFLOP/s; input {seconds:g} s stereo at {RATE} Hz, median of {args.repeats}",
          flush=True)
    results: list[dict[str, Any]] = []
    base = {"seconds": seconds}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        wav = work / "mixture.wav"
        write_wav(wav, synthetic_mixture(seconds))
        for name in args.models:
            with_aoti = not args.skip_aoti and (not args.quick or name == "tdc-17")
            print(f"{name}: exporting", flush=True)
            files = export_forms(name, work, with_aoti, not args.skip_onnx, not args.skip_torchscript)
            segment, overlap = geometry(build_model(name, "reference"))
            builds = args.builds or (BUILDS if not args.quick or name == "tfc-tdf-large" else ("reference", "optimized"))
            specs: dict[tuple[str, str, str], Any] = {
                (name, "eager", build): {"kind": "eager", "model": name, "build": build,
                                         "tune_allocator": build != "reference-malloc", **base}
                for build in builds
            }
            if "torchscript" in files:
                specs[(name, "torchscript", "optimized")] = {"kind": "torchscript", "path": str(files["torchscript"]),
                                                             "segment": segment, "overlap": overlap, **base}
            if "onnx" in files:  # the file holds optimize()'s exact rewrite in standard operations
                specs[(name, "onnx", "optimized")] = {"kind": "onnx", "path": str(files["onnx"]), **base}
            if "aoti" in files:
                specs[(name, "aoti", "optimized")] = {"kind": "aoti", "path": str(files["aoti"]), **base}
            if HOST.exists() and "torchscript" in files and (not args.quick or name == "tdc-17"):
                specs[(name, "cpp", "optimized")] = HostRun(files["torchscript"], wav, work / "host-out", segment, overlap)
                if "aoti" in files:
                    specs[(name, "cpp-aoti", "optimized")] = HostRun(files["aoti"], wav, work / "host-out", segment, overlap)
            flops = paper_model_flops(name, samples)
            print(f"{name}: timing {len(specs)} forms", flush=True)
            for (model, variant, build), (times, rss) in run_group(specs, args.repeats).items():
                extra = {"segment": segment, "overlap": overlap}
                if variant.startswith("cpp"):  # the host's own timing excludes start-up and WAV I/O; these include them
                    run = specs[(model, variant, build)]
                    extra["program_seconds"] = statistics.median(run.program_seconds[WARMUP_ROUNDS:])
                    extra["startup_seconds"] = statistics.median(run.startup_seconds[WARMUP_ROUNDS:])
                results.append(row(model, variant, build, times, rss, flops, seconds, peak, **extra))
                print_row(results[-1])
        if not args.skip_peers:
            specs = {(peer, "peer", "reference"): {"kind": "peer", "peer": peer, **base} for peer in ("umx-hq", "htdemucs")}
            print("peers: timing", flush=True)
            for (peer, variant, build), (times, rss) in run_group(specs, args.repeats).items():
                results.append(row(peer, variant, build, times, rss, peer_flops(peer, samples), seconds, peak))
                print_row(results[-1])
        memory = [] if args.skip_memory else [memory_ratio(m, work) for m in (["tdc-17"] if args.quick else args.models)]
    sdr_check = None if args.skip_sdr else sdr_comparison(60.0 if args.quick else 180.0)
    # measured again at the end: a neighbour's load at the start must not inflate every fraction of peak
    info["matmul_gflop_s_at_end"] = matmul_gflops()
    info["matmul_gflop_s"] = peak = max(peak, info["matmul_gflop_s_at_end"])
    for result in results:
        result["fraction_of_matmul_peak"] = result["achieved_gflop_s"] / peak
    return {"machine": info, "input_seconds": seconds, "repeats": args.repeats, "configurations": results,
            "memory": memory, "fast_sdr": sdr_check, "ratios": ratios(results, memory, sdr_check)}


def ratios(results: list[dict[str, Any]], memory: list[dict[str, Any]], sdr_check: Optional[dict]) -> dict[str, Any]:
    """Speed ratios are real-time-factor ratios (> 1: the first is faster); form ratios are time ratios (< 1: faster)."""
    by = {(r["name"], r["variant"], r["build"]): r for r in results}
    out: dict[str, Any] = {}
    for (name, variant, build), r in by.items():
        if variant != "eager" or build != SPEED_REFERENCE:
            continue
        for peer in ("htdemucs", "umx-hq"):
            if (peer, "peer", "reference") in by:
                out[f"{name} / {peer} speed"] = r["realtime_factor"] / by[(peer, "peer", "reference")]["realtime_factor"]
        reference = by.get((name, "eager", "reference"))
        if reference:
            out[f"{name} optimized / reference speed"] = r["realtime_factor"] / reference["realtime_factor"]
        untuned = by.get((name, "eager", "reference-malloc"))
        if reference and untuned:
            out[f"{name} tuned / default malloc speed"] = reference["realtime_factor"] / untuned["realtime_factor"]
        for other_variant, other_build, label in (("eager", "bf16", "bf16 / fp32 speed"),):
            other = by.get((name, other_variant, other_build))
            if other:
                out[f"{name} {label}"] = other["realtime_factor"] / r["realtime_factor"]
        for form, form_build in (("torchscript", "optimized"), ("cpp", "optimized"), ("aoti", "optimized"),
                                 ("cpp-aoti", "optimized"), ("onnx", "optimized")):
            other = by.get((name, form, form_build))
            if other:
                base = r if form_build == "optimized" else reference
                out[f"{name} {form} / eager time"] = other["wall_seconds"] / base["wall_seconds"]
                if form == "onnx" and reference:
                    out[f"{name} onnx / eager reference time"] = other["wall_seconds"] / reference["wall_seconds"]
    for entry in memory:
        out[f"{entry['model']} 10-min / 1-min peak RSS"] = entry["ratio"]
    if sdr_check:
        out["museval / fast SDR time"] = sdr_check["time_ratio"]
        out["fast SDR max |delta| dB"] = sdr_check["max_abs_delta_db"]
    return out


def print_row(r: dict[str, Any]) -> None:
    print(f"  {r['name']:<14} {r['variant']:<11} {r['build']:<16} {r['wall_seconds']:8.2f} s  {r['realtime_factor']:7.2f}x rt  "
          f"{r['peak_rss_mb']:7.0f} MB  {r['gflop_per_audio_s']:6.1f} GFLOP/audio-s  {r['achieved_gflop_s']:6.1f} GFLOP/s "
          f"({100 * r['fraction_of_matmul_peak']:.0f}% of matmul)", flush=True)
    if "startup_seconds" in r:
        print(f"  {'':<14} {'':<11} {'':<16} start-up {r['startup_seconds']:.2f} s, whole program {r['program_seconds']:.2f} s",
              flush=True)


def main() -> None:
    global WARMUP_ROUNDS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10-s input; bf16 and default malloc for tfc-tdf-large "
                        "only; AOTInductor, "
                        "C++ and memory for tdc-17 only; 1-minute SDR comparison (under 10 minutes on 2 cores)")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--models", nargs="+", default=PAPER_MODELS)
    parser.add_argument("--seconds", type=float, help="input length (default 60, 10 with --quick)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--builds", nargs="+", choices=BUILDS, help="eager builds to time (default: all of them)")
    for part in ("torchscript", "aoti", "onnx", "peers", "memory", "sdr"):
        parser.add_argument(f"--skip-{part}", action="store_true")
    parser.add_argument("--warmup", type=int, default=WARMUP_ROUNDS, help="warm-up rounds before the timed ones")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--memory-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    WARMUP_ROUNDS = args.warmup
    if args.worker:
        return worker(json.loads(args.worker))
    if args.memory_child:
        return memory_child(*args.memory_child)
    report = benchmark(args)
    print(f"fp32 matmul peak {report['machine']['matmul_gflop_s']:.0f} GFLOP/s; all configurations:")
    for result in report["configurations"]:
        print_row(result)
    print("ratios:")
    for key, value in report["ratios"].items():
        print(f"  {key:<45} {value:.4g}")
    if args.json:
        temporary = args.json.with_name(f".{args.json.name}.tmp")
        temporary.write_text(json.dumps(report, indent=2))
        os.replace(temporary, args.json)


if __name__ == "__main__":
    main()
