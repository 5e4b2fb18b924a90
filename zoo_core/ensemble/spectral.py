"""Spectral rules, streamed: the members' estimates go through one STFT, the rule picks or averages per
time-frequency bin, and the result is inverted, block by block with the output equal to doing it on the whole
track at once.

The STFT is librosa's default (what MSST's ``ensemble.py`` calls): centred frames, ``n_fft // 2`` zeros of padding
at each end, a periodic Hann window for analysis and synthesis, and the inverse divided by the summed squared
window. A frame needs ``n_fft`` samples; an output sample is final once every frame that covers it is computed,
so the combiner holds about ``n_fft`` samples per signal plus what the caller pushes at once.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .rules import combine

DEFAULT_N_FFT, DEFAULT_HOP = 2048, 1024  # MSST's ensemble.py, for members that share no STFT


def hann(n_fft: int) -> np.ndarray:
    """Periodic Hann (scipy's ``get_window('hann', n, fftbins=True)``)."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)


class SpectralCombiner:
    """`push` ``[members, signals, m]`` aligned estimates (float32) and get ``[signals, k]`` combined samples that
    are final; `finish` returns the rest. Over a whole track the outputs hold exactly as many samples as were
    pushed. ``weights``: ``[members, signals]``."""

    def __init__(self, rule: str, weights: np.ndarray, n_fft: int = DEFAULT_N_FFT, hop: int = DEFAULT_HOP):
        self.rule, self.weights = rule, np.asarray(weights, np.float64)
        self.n_fft, self.hop = n_fft, hop
        self.window = hann(n_fft)
        self.pad = n_fft // 2
        members, signals = self.weights.shape
        # positions below are in padded coordinates: input sample t sits at t + pad
        self.inputs = np.zeros((members, signals, self.pad), np.float64)  # the leading zero padding
        self.inputs_start = 0
        self.available = self.pad
        self.next_frame = 0
        self.sums = np.zeros((signals, 0))
        self.norm = np.zeros(0)
        self.sums_start = 0
        self.emitted = self.pad  # padded position of the next output sample

    def push(self, stack: np.ndarray) -> np.ndarray:
        self._append(stack)
        self._frames(None)
        return self._release(self.next_frame * self.hop)

    def finish(self) -> np.ndarray:
        received = self.available - self.pad
        frames = 1 + received // self.hop  # librosa's count for the padded signal
        end = (frames - 1) * self.hop + self.n_fft
        if end > self.available:
            self._append(np.zeros(self.inputs.shape[:2] + (end - self.available,)))
        self._frames(frames)
        return self._release(self.pad + received)

    def _append(self, stack: np.ndarray) -> None:
        self.inputs = np.concatenate([self.inputs, stack.astype(np.float64)], axis=2)
        self.available += stack.shape[2]

    def _frames(self, last: int | None) -> None:
        """Compute every frame whose samples are all here (up to ``last`` frames in all)."""
        count = (self.available - self.n_fft) // self.hop + 1 - self.next_frame
        if last is not None:
            count = min(count, last - self.next_frame)
        if count <= 0:
            return
        first = self.next_frame * self.hop
        span = self.inputs[..., first - self.inputs_start : first - self.inputs_start + (count - 1) * self.hop + self.n_fft]
        frames = sliding_window_view(span, self.n_fft, axis=-1)[..., :: self.hop, :]  # [members, signals, count, n]
        spectra = np.fft.rfft(frames * self.window, axis=-1)
        combined = combine(self.rule, spectra, self.weights)  # [signals, count, bins]
        waves = np.fft.irfft(combined, n=self.n_fft, axis=-1) * self.window
        end = first + (count - 1) * self.hop + self.n_fft - self.sums_start
        if end > self.norm.shape[0]:
            grow = end - self.norm.shape[0]
            self.sums = np.concatenate([self.sums, np.zeros((self.sums.shape[0], grow))], axis=1)
            self.norm = np.concatenate([self.norm, np.zeros(grow)])
        squared = self.window**2
        for index in range(count):
            at = first + index * self.hop - self.sums_start
            self.sums[:, at : at + self.n_fft] += waves[:, index]
            self.norm[at : at + self.n_fft] += squared
        self.next_frame += count
        drop = self.next_frame * self.hop - self.inputs_start  # no later frame starts before this
        self.inputs = self.inputs[..., drop:]
        self.inputs_start += drop

    def _release(self, upto: int) -> np.ndarray:
        """Output samples at padded positions ``[emitted, upto)``: no later frame reaches them."""
        upto = min(upto, self.available)
        start, stop = self.emitted - self.sums_start, upto - self.sums_start
        if stop <= start:
            return np.zeros((self.sums.shape[0], 0), np.float32)
        norm = self.norm[start:stop]
        out = np.where(norm > 1e-10, self.sums[:, start:stop] / np.maximum(norm, 1e-10), 0.0)
        self.sums, self.norm = self.sums[:, stop:], self.norm[stop:]
        self.sums_start += stop
        self.emitted = upto
        return out.astype(np.float32)
