"""svs-zoo's band-split RoFormers against the reference implementation: time of one chunk, and max error.

    python benchmarks/roformer_vs_reference.py --reference-repo DIR [--model bs-roformer-viperx] [--frames 101]
        [--runs 5] [--threads 1] [--bf16]

``DIR`` is a checkout of https://github.com/ZFTurbo/Music-Source-Separation-Training that you provide, in an
environment that has its model dependencies (einops, beartype, rotary-embedding-torch, librosa for the Mel-Band
model; none of them is an svs-zoo dependency). ``models/bs_roformer/`` is imported from there at run time.

Both get the same weights (the reference's own initialisation, seeded, read by svs-zoo's importer) and the same
input: ``--frames`` STFT frames (``hop * (frames - 1)`` samples; the registry's chunk is 801) of the MUSDB clip in
``shared/audio`` (seeded noise if it is not there). The reference runs its ``forward`` (its STFT, network, mask,
inverse STFT); svs-zoo runs its registry model's forward (the zoo's STFT, the network, the zoo's inverse STFT):
waveform to waveform on both sides, and the max difference of the outputs is printed (equal output). Timed:
float32, ``torch.inference_mode()``, ``--threads`` threads, one warm-up each, then ``--runs`` rounds alternating
the two; median and minimum reported, and their ratio. ``--bf16`` adds svs-zoo under CPU autocast to bfloat16
(only worth it on CPUs with AVX512-BF16 or AMX; its error against float32 is printed, its SDR cost is not
measured here).
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
    if DEFAULT_CLIP.is_file():
        from zoo_core.audio import read_audio

        audio, _ = read_audio(DEFAULT_CLIP, stream=0)
        return torch.from_numpy(np.ascontiguousarray(audio[:, :samples]))[None]
    return 0.1 * torch.randn(1, 2, samples, generator=torch.Generator().manual_seed(0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference-repo", required=True, type=Path)
    parser.add_argument("--model", default="bs-roformer-viperx")
    parser.add_argument("--frames", type=int, default=101)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--bf16", action="store_true")
    args = parser.parse_args()
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

    variants = {"reference": run_reference, "svs-zoo": lambda: model(audio)}
    if args.bf16:
        def bf16():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return model(audio).float()
        variants["svs-zoo bf16"] = bf16
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
        print(f"  {name:14s} median {statistics.median(times[name]):7.3f} s  min {min(times[name]):7.3f} s  "
              f"max |out - reference| {error:.2e} ({error / peak:.1e} of peak)")
    ratio = statistics.median(times["reference"]) / statistics.median(times["svs-zoo"])
    print(f"  speed-up (median reference / median svs-zoo): {ratio:.2f}x")


if __name__ == "__main__":
    main()
