"""svs-zoo's TFC-TDF-UNet v3 against the reference MDX23C implementation: time of one forward, and max error.

    python benchmarks/v3_vs_reference.py --reference-repo DIR [--config vocals|musdb18] [--runs 5]

``DIR`` is a checkout of https://github.com/ZFTurbo/Music-Source-Separation-Training that you provide; its
``models/mdx23c_tfc_tdf_v3.py`` (``TFC_TDF_net``) and ``configs/config_{vocals,musdb18}_mdx23c.yaml`` are
imported from there at run time (nothing of it is part of svs-zoo). Its module imports
``utils.model_utils`` for one helper; when that module's own dependencies (ml_collections, tqdm) are missing,
a stand-in that provides only that helper is used, and the model code itself runs unchanged. Reading the
YAML configs needs PyYAML.

Both networks get the same weights (the reference's own initialisation, seeded, converted with
`zoo_tfc_tdf_v3.convert.from_reference`) and the same input: one training window (``chunk_size`` = 261,120
samples, 256 frames) of the MUSDB clip in ``shared/audio`` (or ``--audio FILE``; seeded noise if neither is
there). The reference runs its ``forward`` (STFT inside); svs-zoo's network gets the same STFT framing around
it. Timed: float32, ``torch.inference_mode()``, ``--threads`` threads (default 2), glibc's allocator tuned by
`zoo_core.allocator.tune_allocator` for both; one warm-up each, then ``--runs`` rounds alternating the
variants; the median and the minimum are reported. Variants: the reference, svs-zoo's plain module and
`optimize_v3` of it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

from zoo_core.allocator import tune_allocator  # noqa: E402
from zoo_tfc_tdf_v3.convert import from_reference, network_kwargs  # noqa: E402
from zoo_tfc_tdf_v3.network import TFCTDFv3Net, optimize_v3  # noqa: E402

DEFAULT_CLIP = Path(os.environ.get("ZOO_SHARED_DIR", ROOT.parent / "shared")) / "audio" / (
    "The Easton Ellises - Falcon 69.stem.mp4"
)


class _Attributes(dict):
    """A nested mapping read by attribute, as the reference reads its config."""

    def __getattr__(self, name):
        try:
            value = self[name]
        except KeyError:
            raise AttributeError(name) from None
        return _Attributes(value) if isinstance(value, dict) else value


def load_reference(repo: Path):
    """``TFC_TDF_net`` from the user's checkout; a stand-in ``utils.model_utils`` if its imports are missing."""
    sys.path.insert(0, str(repo))
    try:
        import utils.model_utils  # noqa: F401
    except ImportError as exc:
        print(f"note: {exc}; using a stand-in utils.model_utils with prefer_target_instrument only")
        stand_in = types.ModuleType("utils.model_utils")

        def prefer_target_instrument(config):
            target = getattr(config.training, "target_instrument", None)
            return [target] if target else list(config.training.instruments)

        stand_in.prefer_target_instrument = prefer_target_instrument
        sys.modules["utils"] = types.ModuleType("utils")
        sys.modules["utils.model_utils"] = stand_in
    from models.mdx23c_tfc_tdf_v3 import TFC_TDF_net

    return TFC_TDF_net


def read_config(repo: Path, name: str) -> dict:
    import yaml

    with open(repo / "configs" / f"config_{name}_mdx23c.yaml") as file:
        return yaml.load(file, Loader=yaml.FullLoader)


def read_input(path: Path, samples: int) -> tuple[torch.Tensor, str]:
    if path.exists():
        from zoo_core.audio import read_audio

        audio, _ = read_audio(path, stream=0)
        return torch.from_numpy(np.ascontiguousarray(audio[:, :samples])), f"{path.name}, stream 0"
    generator = torch.Generator().manual_seed(0)
    return 0.1 * torch.randn(2, samples, generator=generator), "seeded noise (clip not found)"


class FramedNetwork(torch.nn.Module):
    """Waveform ``[B, 2, N]`` → ``[B, stems, 2, N]`` around a spectrogram-image network, framed like the
    reference: periodic Hann, centred reflect-padded STFT, the lowest ``bins`` bins in, zeros above them out."""

    def __init__(self, network: torch.nn.Module, n_fft: int, hop_length: int, bins: int):
        super().__init__()
        self.network, self.n_fft, self.hop_length, self.bins = network, n_fft, hop_length, bins
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True), persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        batch, channels, samples = waveform.shape
        spec = torch.stft(waveform.reshape(batch * channels, samples), self.n_fft, self.hop_length,
                          window=self.window, center=True, pad_mode="reflect", return_complex=True)
        frames = spec.shape[-1]
        image = torch.view_as_real(spec[:, : self.bins]).reshape(batch, channels, self.bins, frames, 2)
        image = image.permute(0, 1, 4, 2, 3).reshape(batch, 2 * channels, self.bins, frames)
        stems = self.network(image)  # [B, S, 2C, bins, T]
        count = stems.shape[1]
        stems = stems.reshape(batch * count * channels, 2, self.bins, frames).permute(0, 2, 3, 1)
        full = stems.new_zeros(batch * count * channels, self.n_fft // 2 + 1, frames, 2)
        full[:, : self.bins] = stems
        out = torch.istft(torch.view_as_complex(full), self.n_fft, self.hop_length, window=self.window,
                          center=True, length=samples)
        return out.reshape(batch, count, channels, samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference-repo", type=Path, required=True, help="checkout of ZFTurbo's repository")
    parser.add_argument("--config", choices=("vocals", "musdb18"), default="vocals")
    parser.add_argument("--audio", type=Path, default=DEFAULT_CLIP)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-plain", action="store_true", help="time only the reference and optimize_v3")
    args = parser.parse_args()

    tuned = tune_allocator()
    torch.set_num_threads(args.threads)
    config = read_config(args.reference_repo, args.config)
    reference_class = load_reference(args.reference_repo)

    torch.manual_seed(0)
    reference = reference_class(_Attributes(config)).eval()
    kwargs = network_kwargs(config)
    ours = TFCTDFv3Net(**kwargs).eval()
    ours.load_state_dict(from_reference(reference.state_dict()), strict=True)
    audio = config["audio"]
    framed = {"plain": FramedNetwork(ours, audio["n_fft"], audio["hop_length"], audio["dim_f"])}
    framed["optimize_v3"] = FramedNetwork(optimize_v3(ours), audio["n_fft"], audio["hop_length"], audio["dim_f"])
    if args.no_plain:
        del framed["plain"]
    variants = {"reference": reference, **framed}

    mixture, source = read_input(args.audio, audio["chunk_size"])
    batch = mixture.unsqueeze(0)
    print(f"config {args.config} ({kwargs['stems']} stems), input: {source}, {batch.shape[-1]} samples; "
          f"threads {args.threads}; allocator tuned: {tuned}; torch {torch.__version__}")

    outputs, times = {}, {name: [] for name in variants}
    with torch.inference_mode():
        for name, model in variants.items():  # warm-up, and the outputs compared below
            outputs[name] = model(batch)
        for _ in range(args.runs):
            for name, model in variants.items():
                start = time.perf_counter()
                model(batch)
                times[name].append(time.perf_counter() - start)

    expected = outputs["reference"]
    peak = expected.abs().max().item()
    print("wall-clock seconds per forward; on a shared machine the minimum is the least disturbed figure")
    print(f"{'variant':<12} {'median':>7} {'min':>7} {'speed-up':>14} {'max |err|':>10} {'/ peak':>8}  runs")
    for name in variants:
        error = (outputs[name] - expected).abs().max().item()
        median, best = statistics.median(times[name]), min(times[name])
        speed_up = f"{statistics.median(times['reference']) / median:.2f}/{min(times['reference']) / best:.2f}x"
        runs = " ".join(f"{t:.1f}" for t in times[name])
        print(f"{name:<12} {median:7.2f} {best:7.2f} {speed_up:>14} {error:10.3g} {error / peak:8.2g}  {runs}")
    print(f"output peak {peak:.4g}; speed-up = reference / variant, of the medians / of the minima")


if __name__ == "__main__":
    main()
