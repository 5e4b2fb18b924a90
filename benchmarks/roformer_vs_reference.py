"""svs-zoo's band-split RoFormers against the reference implementation: time of one chunk, and max error.

    python benchmarks/roformer_vs_reference.py --reference-repo DIR [--model bs-roformer-viperx] [--frames 801]
        [--runs 3] [--threads 1] [--bf16] [--inductor] [--tune-allocator]

``DIR`` is a checkout of https://github.com/ZFTurbo/Music-Source-Separation-Training that you provide, in an
environment that has its model dependencies (einops, beartype, rotary-embedding-torch, librosa for the Mel-Band
model; none of them is an svs-zoo dependency). ``models/bs_roformer/`` is imported from there at run time.

Both get the same weights (the reference's own initialisation, seeded, read by svs-zoo's importer) and the same
input: ``--frames`` STFT frames (``hop * (frames - 1)`` samples; the registry's chunk is 801) of the MUSDB clip in
``shared/audio``, repeated to that length (seeded noise if it is not there). The reference runs its ``forward`` (its STFT, network, mask,
inverse STFT); svs-zoo runs its registry model's forward (the zoo's STFT, the network, the zoo's inverse STFT):
waveform to waveform on both sides, and the max difference of the outputs is printed (equal output). svs-zoo
runs twice: as built (the trainable network) and through `zoo_core.inference.optimize` (its exact inference
rewrite: what `zoo separate` runs). Timed: float32, ``torch.inference_mode()``, ``--threads`` threads, one
warm-up each, then ``--runs`` rounds alternating all of them; median and minimum reported, and the ratios.
``--bf16`` adds ``optimize(model, torch.bfloat16)`` (`zoo separate --precision bf16`; only worth it on CPUs
with AVX512-BF16 or AMX; its error is printed here, its SDR cost is measured by `zoo eval --precision`, see
docs/performance.md). ``--inductor`` adds the rewrite for an export compiled by Inductor (``torch.compile``
with frozen weights: the code generator `zoo export --format aoti` uses; compiling takes minutes, untimed).
``--tune-allocator`` applies `zoo_core.allocator.tune_allocator` (what the ``zoo`` command does) to the whole
process, the reference included.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

import zoo_core  # noqa: E402
from zoo_core.inference import optimize  # noqa: E402
from zoo_core.registry import architecture_for, build_model, get_entry  # noqa: E402
from zoo_core.weights.convert import convert  # noqa: E402

DEFAULT_CLIP = Path(os.environ.get("ZOO_SHARED_DIR", ROOT.parent / "shared")) / "audio" / (
    "The Easton Ellises - Falcon 69.stem.mp4"
)


def reference_network(repo: Path, entry):
    """The reference class built with the entry's options (the released configs' `model` values)."""
    sys.path.insert(0, str(repo))
    options = dict(entry.architecture_options)
    stft = entry.stft
    common = dict(stereo=True, num_stems=len(entry.stems), stft_n_fft=stft.n_fft, stft_hop_length=stft.hop_length,
                  stft_win_length=stft.n_fft, attn_dropout=0.0, ff_dropout=0.0)
    options.pop("zero_dc", None)
    if entry.architecture_name == "bs-roformer":
        from models.bs_roformer.bs_roformer import BSRoformer

        if "freqs_per_bands" in options:
            options["freqs_per_bands"] = tuple(options["freqs_per_bands"])
        return BSRoformer(**options, **common)
    from models.bs_roformer.mel_band_roformer import MelBandRoformer

    return MelBandRoformer(**options, **common)


def mixture(samples: int) -> torch.Tensor:
    """``[1, 2, samples]``: the clip, repeated end to end when it is shorter (6.1 s; a chunk is 8 s), so both
    sides see exactly ``samples`` samples and frame them alike."""
    if DEFAULT_CLIP.is_file():
        from zoo_core.audio import read_audio

        audio, _ = read_audio(DEFAULT_CLIP, stream=0)
        audio = np.tile(audio, (1, -(-samples // audio.shape[1])))
        return torch.from_numpy(np.ascontiguousarray(audio[:, :samples]))[None]
    return 0.1 * torch.randn(1, 2, samples, generator=torch.Generator().manual_seed(0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference-repo", required=True, type=Path)
    parser.add_argument("--model", default="bs-roformer-viperx")
    parser.add_argument("--frames", type=int, default=801, help="STFT frames (default: the released chunk, 801)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--inductor", action="store_true")
    parser.add_argument("--tune-allocator", action="store_true")
    args = parser.parse_args()
    if args.tune_allocator:
        from zoo_core.allocator import tune_allocator

        tune_allocator()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    entry = get_entry(args.model)
    reference = reference_network(args.reference_repo, entry).eval()
    model = build_model(entry).eval()
    converted = convert(reference.state_dict(), args.model, architecture_for(entry).convert)
    model.network.load_state_dict(converted.tensors, strict=True)
    audio = mixture(entry.stft.hop_length * (args.frames - 1))

    def run_reference():
        out = reference(audio)
        return out if out.ndim == 4 else out[:, None]

    fast = optimize(model)
    variants = {"reference": run_reference, "svs-zoo as built": lambda: model(audio), "svs-zoo": lambda: fast(audio)}
    if args.bf16:
        fast_bf16 = optimize(model, torch.bfloat16)
        variants["svs-zoo bf16"] = lambda: fast_bf16(audio)
    if args.inductor:
        from torch._inductor import config as inductor_config

        inductor_config.freezing = True  # weights as constants: oneDNN-packed matrix products
        compiled = optimize(model, target="aoti")
        compiled.network = torch.compile(compiled.network)
        variants["svs-zoo inductor"] = lambda: compiled(audio)
    times = {name: [] for name in variants}
    outputs = {}
    with torch.inference_mode():
        for name, fn in variants.items():
            outputs[name] = fn()  # warm-up
        for _ in range(args.runs):
            for name, fn in variants.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    peak = outputs["reference"].abs().max().item()
    print(f"{args.model}: {args.frames} frames ({audio.shape[-1]} samples), {args.threads} thread(s), "
          f"torch {torch.__version__}, {args.runs} interleaved rounds")
    for name in variants:
        error = (outputs[name] - outputs["reference"]).abs().max().item()
        print(f"  {name:17s} median {statistics.median(times[name]):7.3f} s  min {min(times[name]):7.3f} s  "
              f"max |out - reference| {error:.2e} ({error / peak:.1e} of peak)")
    for name in variants:
        if name != "reference":
            by_median = statistics.median(times["reference"]) / statistics.median(times[name])
            by_min = min(times["reference"]) / min(times[name])
            print(f"  speed-up of {name} over the reference: {by_median:.2f}x by median, {by_min:.2f}x by minimum")


if __name__ == "__main__":
    main()
