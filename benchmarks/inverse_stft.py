"""svs-zoo's inverse STFT against torch.istft and against an F.fold overlap-add: time and largest difference.

    python benchmarks/inverse_stft.py [--threads 1] [--runs 7]

`zoo_core.framing.ISTFT` runs torch.istft's operations in its order (irfft over ``[frames, n_fft]``, the
overlap-add as unfold's adjoint), so a centred inverse equals torch.istft bit for bit; svs-zoo used to
overlap-add with ``F.fold`` over ``[n_fft, frames]`` columns (as examples/cpp_host still does with col2im), which
sums the same terms in another order. Geometries: one training window of mdx23c (n_fft 8192, hop 1024, 256
frames), of tfc-tdf-v3-small (4096, 1024, 128) and of tdc-17 (2048, 1024, 64 frames, not centred: torch.istft
refuses frames no window covers, so it has no column there), two stems of a stereo batch of 2. Median of
``--runs`` after a warm-up, in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from zoo_core.framing import ISTFT, STFT


def fold_istft(spec: torch.Tensor, n_fft: int, hop: int, center: bool, length: int) -> torch.Tensor:
    """The F.fold formulation: [B, n_fft, T] windowed columns, overlap-added and divided by the summed squares."""
    window = torch.hann_window(n_fft)
    columns = torch.fft.irfft(spec, n=n_fft, dim=1) * window.unsqueeze(-1)
    frames = spec.shape[-1]
    full = n_fft + hop * (frames - 1)
    signal = F.fold(columns, (1, full), (1, n_fft), stride=(1, hop)).reshape(spec.shape[0], full)
    squares = (window * window).unsqueeze(-1).expand(n_fft, frames).unsqueeze(0)
    norm = F.fold(squares, (1, full), (1, n_fft), stride=(1, hop)).reshape(full)
    tiny = torch.finfo(torch.float32).tiny
    signal = torch.where(norm > tiny, signal / norm.clamp_min(tiny), signal)
    start = n_fft // 2 if center else 0
    return signal[:, start : start + length]


def median_ms(function, runs: int) -> float:
    function()
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        function()
        times.append(time.perf_counter() - began)
    return 1e3 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{'geometry':<34} {'svs-zoo':>9} {'torch.istft':>12} {'F.fold':>9}  max |svs-zoo - istft|, |fold - istft|")
    for name, n_fft, hop, frames, center in [
        ("mdx23c (8192/1024, 256 frames)", 8192, 1024, 256, True),
        ("tfc-tdf-v3-small (4096/1024, 128)", 4096, 1024, 128, True),
        ("tdc-17 (2048/1024, 64, uncentred)", 2048, 1024, 64, False),
    ]:
        length = hop * (frames - 1) if center else n_fft + hop * (frames - 1)
        waves = torch.randn(4, 2, length, generator=torch.Generator().manual_seed(0)) * 0.1
        spec = STFT(n_fft, hop, center)(waves)  # [4, 2, bins, frames]
        flat = spec.reshape(8, *spec.shape[-2:])
        ours = ISTFT(n_fft, hop, center)
        row = [median_ms(lambda: ours(spec, length), args.runs)]
        if center:
            window = torch.hann_window(n_fft)
            istft = lambda: torch.istft(flat, n_fft, hop, window=window, center=True, length=length)  # noqa: E731
            row.append(median_ms(istft, args.runs))
            reference = istft()
            ours_error = (ours(spec, length).reshape(8, length) - reference).abs().max().item()
            fold_error = (fold_istft(flat, n_fft, hop, center, length) - reference).abs().max().item()
            errors = f"{ours_error:.1e}, {fold_error:.1e}"
        else:
            row.append(float("nan"))
            errors = "(no torch.istft)"
        row.append(median_ms(lambda: fold_istft(flat, n_fft, hop, center, length), args.runs))
        print(f"{name:<34} {row[0]:>9.1f} {row[1]:>12.1f} {row[2]:>9.1f}  {errors}")


if __name__ == "__main__":
    main()
