"""Which STFT bins each band of a band-split RoFormer reads.

BS-RoFormer (Lu et al., 2023) cuts the bins into consecutive bands of given widths. Mel-Band RoFormer (Wang et
al., 2023) reads overlapping bands: band ``b`` holds every bin where the ``b``-th triangle of a Slaney mel filter
bank (librosa's default: ``htk=False``, ``fmin=0``, ``fmax=sample_rate/2``) is positive, with the lowest bin put
in the first band and the highest in the last, as the reference code does; a bin in two bands gets the average
of their masks. Everything here is computed once, when a network is built.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

_MEL_LINEAR_STEP = 200.0 / 3  # Hz per mel below 1 kHz (Slaney's Auditory Toolbox)
_MEL_LOG_START_HZ = 1000.0
_MEL_LOG_STEP = math.log(6.4) / 27.0


def _hz_to_mel(hz: float) -> float:
    if hz < _MEL_LOG_START_HZ:
        return hz / _MEL_LINEAR_STEP
    return _MEL_LOG_START_HZ / _MEL_LINEAR_STEP + math.log(hz / _MEL_LOG_START_HZ) / _MEL_LOG_STEP


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    start = _MEL_LOG_START_HZ / _MEL_LINEAR_STEP
    linear = _MEL_LINEAR_STEP * mels
    logarithmic = _MEL_LOG_START_HZ * np.exp(_MEL_LOG_STEP * (mels - start))
    return np.where(mels >= start, logarithmic, linear)


def mel_band_membership(sample_rate: int, n_fft: int, bands: int) -> np.ndarray:
    """``[bands, n_fft/2 + 1]`` bool: bin ``f`` is in band ``b`` where the Slaney mel triangle ``b`` is positive
    (computed in float64, judged after rounding to float32 as the reference's float32 filter bank is)."""
    bin_hz = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2.0), bands + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - bin_hz[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)
    member = weights > 0
    member[0, 0] = True  # the reference forces the lowest bin into the first band
    member[-1, -1] = True  # and the highest into the last (its weight can round to 0)
    if not member.any(axis=0).all():
        raise ValueError(f"{bands} mel bands leave some of the {n_fft // 2 + 1} bins uncovered")
    return member


def mel_band_widths(member: np.ndarray) -> list[int]:
    return [int(n) for n in member.sum(axis=1)]


def gathered_bins(member: np.ndarray) -> np.ndarray:
    """The bins of every band, band after band, ascending within a band (the reference's gather order)."""
    rows, cols = np.nonzero(member)
    return cols[np.lexsort((cols, rows))]


def stereo_positions(bins: np.ndarray, audio_channels: int) -> np.ndarray:
    """Bin indices → positions in the (bin, channel) axis: ``bin * channels + channel`` for each channel."""
    positions = bins[:, None] * audio_channels + np.arange(audio_channels)[None, :]
    return positions.reshape(-1).astype(np.int64)


def averaging_indices(positions: np.ndarray, total: int) -> tuple[np.ndarray, np.ndarray]:
    """For the mask average over overlapping bands: ``[most, total]`` indices into the gathered axis (``len(
    positions)`` = an appended zero), taken in gather order so that the sums run in the reference's order, and the
    number of bands at each of the ``total`` positions."""
    count = np.bincount(positions, minlength=total)
    index = np.full((int(count.max()), total), len(positions), dtype=np.int64)
    filled = np.zeros(total, dtype=np.int64)
    for gathered, position in enumerate(positions.tolist()):
        index[filled[position], position] = gathered
        filled[position] += 1
    return index, count


def check_band_widths(widths: Sequence[int], bins: int) -> None:
    if len(widths) < 2 or any(int(w) < 1 for w in widths) or sum(int(w) for w in widths) != bins:
        raise ValueError(f"freqs_per_bands must be 2 or more positive widths summing to the {bins} bins, "
                         f"got {len(widths)} summing to {sum(int(w) for w in widths)}")
