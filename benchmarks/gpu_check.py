"""Every figure of the GPU check (scripts/gpu-check.sh runs this on a machine with an NVIDIA GPU).

Sections, each printed as it finishes (one failing section is reported and the others still run):

- ``precision``: tfc-tdf-large (initialised, seed 0) exported to TorchScript with the export's own CUDA check,
  then run on the clip in float32 and under fp16 / bf16 autocast, as the file and as the eager model: the SDR
  of each low-precision output against the float32 one. tdc-17 with the authors' top1 weights gives the vocal
  SDR against the clip's true vocals in each precision (what a user hears).
- ``cpp``: builds examples/cpp_host against this torch, runs the TorchScript file on CUDA and compares its WAV
  outputs with the same file run from Python.
- ``aoti``: compiles tfc-tdf-large's AOTInductor package for CUDA, checks it from Python against eager and
  runs it through the C++ host.
- ``speed``: real-time factor and peak GPU memory of every paper model, the v3 entries, HT-Demucs and UMX-HQ
  (initialised weights: compute does not depend on them) on one synthetic stereo input, float32 and bfloat16.

``--device cpu --quick`` runs the same code on a CPU (a smoke test of this script, not a measurement).
"""

from __future__ import annotations

import argparse
import copy
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import zoo_core  # noqa: E402
import zoo_core
from zoo_core.errors import first_line  # noqa: E402
from zoo_core.export.torchscript import exact_float32, export_torchscript  # noqa: E402
from zoo_core.inference import optimize  # noqa: E402
from zoo_core.metrics import sdr  # noqa: E402
from zoo_core.separation import separate  # noqa: E402

RATE = 44100
PAPER = ["tdf-17", "tdc-17", "tfc-17", "tfc-tdf-17", "tdc-rnn", "tfc-rnn", "tfc-tdf-small", "tfc-tdf-small-mag",
         "tfc-tdf-large"]
V3 = ["tfc-tdf-v3-small", "mdx23c-vocals", "mdx23c-musdb18", "mdx23c-instvoc-hq"]
PEERS = ["htdemucs", "umx-hq"]


def say(text: str = "") -> None:
    print(text, flush=True)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_sdr(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    """museval's framewise SDR (1-s windows, as SiSEC) of one [2, N] stem, median over frames, in dB."""
    refs = reference.detach().float().cpu().numpy().T[None]
    ests = estimate.detach().float().cpu().numpy().T[None]
    frames = sdr(refs, ests)[0]
    return float(np.nanmedian(frames[np.isfinite(frames)])) if np.isfinite(frames).any() else float("inf")


def autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


PRECISIONS = {"fp32": None, "fp16 autocast": torch.float16, "bf16 autocast": torch.bfloat16}


def load_clip(data: Path) -> tuple[torch.Tensor, torch.Tensor]:
    clip = np.load(data / "clip.npz")
    return torch.from_numpy(clip["mixture"]), torch.from_numpy(clip["vocals"])


def seeded(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return zoo_core.load(name, init=True).eval()


def section_precision(args, work: Path, device: torch.device) -> None:
    mixture, vocals = load_clip(args.data)
    model = seeded("tfc-tdf-large")
    path = work / "tfc-tdf-large.ts.pt"
    result = export_torchscript(model, zoo_core.get_entry("tfc-tdf-large"), path, device=str(device))
    worst = max(check.relative_error for check in result.checks)
    say(f"TorchScript export of tfc-tdf-large, checked on {device.type}: {len(result.checks)} checks passed "
        f"(worst relative error {worst:.1e}; TF32 off during checks)")
    module = torch.jit.load(str(path), map_location=device)
    eager = optimize(copy.deepcopy(model).to(device))
    batch = mixture[None].to(device)
    say("tfc-tdf-large (initialised): SDR of each output against float32's, vocals, median over 1-s frames")
    for runner_name, runner in (("TorchScript file", module), ("eager, optimize()", eager)):
        with torch.no_grad(), exact_float32():
            reference = runner(batch)[0, 0]
        for label, dtype in list(PRECISIONS.items())[1:]:
            try:
                with torch.no_grad(), autocast(device, dtype):
                    out = runner(batch)[0, 0].float()
            except RuntimeError as exc:  # e.g. a CPU without fp16 convolution kernels
                say(f"  {runner_name:18} {label:14} failed: {first_line(exc)}")
                continue
            change = median_sdr(reference, out)
            note = " (identical: autocast did not reach inside)" if torch.equal(out, reference) else ""
            say(f"  {runner_name:18} {label:14} {change:7.1f} dB{note}")
    weights = args.data / "shared" / "weights" / "ismir2020" / "cac_tdc_17_vocals_top1.pt"
    if not weights.is_file():
        say(f"  (no {weights}: tdc-17 vocal SDR skipped)")
        return
    tdc = zoo_core.load("tdc-17:top1", init=True)
    tdc.network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    tdc = optimize(tdc.eval().to(device))
    say("tdc-17 top1 (the authors' weights): vocal SDR against the clip's true vocals, median over 1-s frames")
    for label, dtype in PRECISIONS.items():
        try:
            with torch.no_grad(), autocast(device, dtype), (exact_float32() if dtype is None else contextlib.nullcontext()):
                estimate = separate(tdc, mixture, RATE)["vocals"]
        except RuntimeError as exc:
            say(f"  {label:14} failed: {first_line(exc)}")
            continue
        say(f"  {label:14} {median_sdr(vocals, estimate):7.3f} dB")


def build_host(work: Path) -> Path:
    source = ROOT / "examples" / "cpp_host"
    build = work / "cpp-build"
    prefix = torch.utils.cmake_prefix_path
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    began = time.perf_counter()
    subprocess.run(["cmake", "-S", str(source), "-B", str(build), *generator, "-DCMAKE_BUILD_TYPE=Release",
                    f"-DCMAKE_PREFIX_PATH={prefix}"], check=True, capture_output=True, text=True)
    subprocess.run(["cmake", "--build", str(build), "-j", str(os.cpu_count() or 2)], check=True, capture_output=True,
                   text=True)
    say(f"C++ host built against torch {torch.__version__} in {time.perf_counter() - began:.0f} s")
    return build / "zoo_host"


def run_host(binary: Path, artifact: Path, wav: Path, out: Path, device: torch.device) -> dict[str, torch.Tensor]:
    import soundfile

    done = subprocess.run([str(binary), str(artifact), str(wav), str(out), "--device", str(device)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"zoo_host exited {done.returncode}: {done.stderr.strip() or done.stdout.strip()}")
    for line in done.stdout.strip().splitlines():
        say(f"  zoo_host: {line}")
    stems = {}
    for file in sorted(out.glob("*.wav")):
        audio, _ = soundfile.read(str(file), dtype="float32", always_2d=True)
        stems[file.stem] = torch.from_numpy(audio.T.copy())
    return stems


def write_clip_wav(mixture: torch.Tensor, path: Path) -> None:
    import soundfile

    soundfile.write(str(path), mixture.numpy().T, RATE, subtype="FLOAT")


def section_cpp(args, work: Path, device: torch.device) -> None:
    mixture, _ = load_clip(args.data)
    path = work / "tfc-tdf-large.ts.pt"
    if not path.is_file():
        export_torchscript(seeded("tfc-tdf-large"), zoo_core.get_entry("tfc-tdf-large"), path, device=str(device))
    binary = build_host(work)
    wav = work / "clip.wav"
    write_clip_wav(mixture, wav)
    module = torch.jit.load(str(path), map_location=device)
    segment, overlap = int(module.default_segment()), int(module.default_overlap())
    with torch.no_grad(), exact_float32():
        expected = module.separate_chunked(mixture[None].to(device), segment, overlap, 4)[0].cpu()
    hosted = run_host(binary, path, wav, work / "cpp-ts", device)  # libtorch's defaults: TF32 convolutions
    for index, stem in enumerate(module.stems()):
        error = (hosted[stem] - expected[index]).abs().max().item()
        say(f"  C++ host on {device.type} vs Python, {stem}: max |difference| {error:.1e}")


def section_aoti(args, work: Path, device: torch.device) -> None:
    from zoo_core.export.aoti import export_aoti
    import zoo_core

    mixture, _ = load_clip(args.data)
    model = seeded("tfc-tdf-large")
    path = work / "tfc-tdf-large.pt2"
    began = time.perf_counter()
    result = export_aoti(model, zoo_core.get_entry("tfc-tdf-large"), path, device=device.type)
    worst = max(check.relative_error for check in result.checks)
    say(f"AOTInductor package of tfc-tdf-large for {device.type}: compiled and checked in "
        f"{time.perf_counter() - began:.0f} s (worst relative error {worst:.1e})")
    with torch.no_grad():
        expected = separate(model, mixture, RATE)
    with torch.no_grad(), exact_float32():
        actual = separate(zoo_core.load(path, device=device.type), mixture, RATE)
    for stem in expected:
        say(f"  Python host on {device.type} vs eager CPU, {stem}: max |difference| "
            f"{(actual[stem].cpu() - expected[stem]).abs().max().item():.1e}")
    binary = work / "cpp-build" / "zoo_host"
    if binary.is_file():
        wav = work / "clip.wav"
        hosted = run_host(binary, path, wav, work / "cpp-aoti", device)
        for stem in expected:
            say(f"  C++ host (.pt2) vs eager CPU, {stem}: max |difference| "
                f"{(hosted[stem] - expected[stem]).abs().max().item():.1e}")


def separator_for(name: str, device: torch.device, dtype: torch.dtype) -> tuple[Callable, int]:
    """(separate(mixture [2, N]) on ``device``, parameter count)."""
    if name in PEERS:
        import peers

        model, run = peers.PEERS[name]()
        model = model.to(device)
        count = sum(p.numel() for p in model.parameters())

        def peer(mixture: torch.Tensor) -> object:
            with autocast(device, dtype if dtype != torch.float32 else None):
                return run(mixture[None].to(device))

        return peer, count
    model = seeded(name).to(device)
    count = sum(p.numel() for p in model.parameters())
    fast = optimize(model, dtype)
    return (lambda mixture: separate(fast, mixture, RATE)), count


def section_speed(args, work: Path, device: torch.device) -> None:
    seconds = 10 if args.quick else args.seconds
    names = (PAPER[:2] + V3[:1]) if args.quick else PAPER + V3 + PEERS
    generator = torch.Generator().manual_seed(0)
    mixture = 0.1 * torch.randn(2, seconds * RATE, generator=generator)
    warm = mixture[:, : 5 * RATE]
    say(f"speed on {device_name(device)}: {seconds} s of synthetic stereo at 44.1 kHz, default segment and overlap, "
        "median of 3 after a warm-up; peak GPU memory allocated by torch")
    say(f"  {'model':20} {'params':>11} {'fp32 x RT':>10} {'peak MB':>8} {'bf16 x RT':>10} {'peak MB':>8}")
    for name in names:
        cells = []
        count = 0
        for dtype in (torch.float32, torch.bfloat16):
            try:
                run, count = separator_for(name, device, dtype)
                with torch.no_grad():
                    run(warm)
                    synchronize(device)
                    if device.type == "cuda":
                        torch.cuda.reset_peak_memory_stats(device)
                    times = []
                    for _ in range(1 if args.quick else 3):
                        began = time.perf_counter()
                        run(mixture)
                        synchronize(device)
                        times.append(time.perf_counter() - began)
                peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")
                cells.append(f"{seconds / float(np.median(times)):10.1f} {peak:8.0f}")
            except Exception as exc:  # a model that cannot run in one precision still gets its other cell
                cells.append(f"{'failed':>10} {'':8}")
                say(f"  ({name}, {dtype}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")
            finally:
                if device.type == "cuda":
                    torch.cuda.empty_cache()
        say(f"  {name:20} {count:11,} {cells[0]} {cells[1]}")


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"


SECTIONS = {"precision": section_precision, "cpp": section_cpp, "aoti": section_aoti, "speed": section_speed}


@contextlib.contextmanager
def workspace(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as folder:
        yield Path(folder)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / ".gpu-check", help="what `gpu-check.sh prepare` wrote")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset of " + ",".join(SECTIONS))
    parser.add_argument("--seconds", type=int, default=60, help="input length of the speed section")
    parser.add_argument("--quick", action="store_true", help="a few models, one round, 10 s (a smoke test)")
    parser.add_argument("--work", type=Path, help="keep exported files and the C++ build here")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        say("error: no CUDA device visible to torch")
        return 2
    say(f"torch {torch.__version__} (CUDA {torch.version.cuda}), {device_name(device)}, svs-zoo {zoo_core.__version__}")
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        say(f"  {props.total_memory / 2**30:.0f} GiB, {props.multi_processor_count} SMs, compute capability "
            f"{props.major}.{props.minor}")
    failed = []
    with workspace(args.work) as work:
        for name in args.sections.split(","):
            say(f"\n== {name}")
            began = time.perf_counter()
            try:
                SECTIONS[name](args, work, device)
            except Exception:
                failed.append(name)
                say(f"section {name} FAILED:\n{traceback.format_exc(limit=6)}")
            say(f"({name}: {time.perf_counter() - began:.0f} s)")
    if failed:
        say(f"\nfailed sections: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
