"""Speed of one model in every deployment form: eager PyTorch, TorchScript, AOTInductor, and the C++ host.

    python benchmarks/export_formats.py [--model tdc-17] [--seconds 10] [--repeats 3] [--weights FILE]

All forms separate the same stereo input through the same chunking (default segment and overlap, batch 4)
and report the best of ``--repeats`` runs as seconds and real-time factor (processing time / audio time).
The C++ rows need the host built in examples/cpp_host/build (see examples/cpp_host/README.md); they time
the whole program (loading included) and also print the host's own in-process figure. Exports go to a
temporary folder; AOTInductor compilation takes a minute or two and is not timed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile
import torch

import zoo_core
from zoo_core.export.aoti import export_aoti
from zoo_core.export.artifact import SeparatorArtifact
from zoo_core.export.deprecation import torchscript_deprecation_silenced
from zoo_core.export.torchscript import export_torchscript
from zoo_core.separation import SeparationSettings

HOST = Path(__file__).resolve().parent.parent / "examples" / "cpp_host" / "build" / "zoo_host"
BATCH_SIZE = 4


def best_of(repeats: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return min(times)


def aoti_chunked(model: zoo_core.SeparationModel, package, segment: int, overlap: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """``model`` with the compiled package in place of its U-Net: the AOTInductor path, chunked in Python."""

    class CompiledCore(torch.nn.Module):
        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return package(image)

    model.network = CompiledCore()
    model.masking = False  # the package applies a mask itself (SpectrogramCore)
    artifact = SeparatorArtifact(model, segment, overlap).eval()
    return lambda mixture: artifact.separate_chunked(mixture, segment, overlap, BATCH_SIZE)


def host_seconds(model_file: Path, wav: Path, out: Path) -> tuple[float, float]:
    began = time.perf_counter()
    result = subprocess.run([str(HOST), str(model_file), str(wav), str(out), "--batch-size", str(BATCH_SIZE)],
                            capture_output=True, text=True, check=True)
    total = time.perf_counter() - began
    inside = float(re.search(r"audio in ([0-9.e+-]+) s", result.stdout).group(1))
    return total, inside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tdc-17")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--weights", type=Path, help="a state_dict for model.network (else initialised parameters)")
    parser.add_argument("--skip-aoti", action="store_true", help="skip the AOTInductor compile and rows")
    args = parser.parse_args()

    model = zoo_core.load(args.model, init=True).eval()
    if args.weights:
        model.network.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True))
    entry = zoo_core.get_entry(args.model)
    samples = int(args.seconds * model.sample_rate)
    mixture = 0.1 * torch.randn(1, 2, samples, generator=torch.Generator().manual_seed(0))
    segment, overlap = SeparationSettings().geometry(model)  # the defaults of `zoo separate` and `zoo export`
    rows: list[tuple[str, float]] = []

    with tempfile.TemporaryDirectory() as folder, torch.no_grad():
        work = Path(folder)
        wav = work / "mixture.wav"
        soundfile.write(wav, mixture[0].T.numpy().astype(np.float32), model.sample_rate, subtype="FLOAT")
        eager = SeparatorArtifact(model, segment, overlap).eval()
        rows.append(("eager PyTorch", best_of(args.repeats, lambda: eager.separate_chunked(mixture, segment, overlap, BATCH_SIZE))))

        scripted_file = work / "model.ts.pt"
        export_torchscript(model, entry, scripted_file)
        with torchscript_deprecation_silenced():
            scripted = torch.jit.load(str(scripted_file))
        scripted.separate_chunked(mixture, segment, overlap, BATCH_SIZE)  # profiling runs of the JIT
        rows.append(("TorchScript (Python)", best_of(args.repeats, lambda: scripted.separate_chunked(mixture, segment, overlap, BATCH_SIZE))))

        package_file = work / "model.pt2"
        if not args.skip_aoti:
            export_aoti(model, entry, package_file, segment=segment, overlap=overlap)
            package = torch._inductor.aoti_load_package(str(package_file))
            run_aoti = aoti_chunked(zoo_core.load(args.model, init=True).eval(), package, segment, overlap)
            rows.append(("AOTInductor core (Python)", best_of(args.repeats, lambda: run_aoti(mixture))))

        if HOST.exists():
            formats = [("TorchScript", scripted_file)] + ([] if args.skip_aoti else [("AOTInductor", package_file)])
            for label, file in formats:
                runs = [host_seconds(file, wav, work / "out") for _ in range(args.repeats)]
                rows.append((f"C++ host, {label} (whole program)", min(r[0] for r in runs)))
                rows.append((f"C++ host, {label} (separation only)", min(r[1] for r in runs)))
        else:
            print(f"(no C++ rows: build the host first, {HOST} is missing)")

    print(f"{args.model}, {args.seconds:g} s stereo at {model.sample_rate} Hz, segment {segment}, overlap {overlap}, "
          f"batch {BATCH_SIZE}, torch {torch.__version__}, {torch.get_num_threads()} threads, best of {args.repeats}")
    for label, seconds in rows:
        print(f"  {label:<40} {seconds:8.2f} s   real-time factor {seconds / args.seconds:.3f}")


if __name__ == "__main__":
    main()
