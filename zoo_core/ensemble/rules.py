"""The ensemble rules: how the members' estimates of one stem become one estimate.

Semantics of MSST's ``ensemble.py`` (ZFTurbo/Music-Source-Separation-Training), per stem:

- ``avg-wave``: the weighted average of the waveforms, ``sum(w_i * x_i) / sum(w_i)``.
- ``median-wave``: the median of the waveforms, sample by sample (weights do not apply).
- ``avg-spec``: the weighted average of the members' STFTs, inverted.
- ``max-spec`` / ``min-spec``: per time-frequency bin, the member's complex value of largest / smallest
  magnitude (the first member on a tie), inverted.

The spectral rules go through `zoo_core.ensemble.spectral` (centred STFT, zero padding, periodic Hann, as
librosa's ``stft``/``istft`` that MSST calls).
"""

from __future__ import annotations

import numpy as np

from ..errors import ZooError

RULES = ("avg-wave", "median-wave", "avg-spec", "max-spec", "min-spec")
WEIGHTED = ("avg-wave", "avg-spec")  # the rules weights apply to
SPECTRAL = ("avg-spec", "max-spec", "min-spec")


def check_rule(rule: str) -> str:
    if rule not in RULES:
        raise ZooError(f"unknown ensemble rule {rule!r} (choose {', '.join(RULES)})")
    return rule


def combine(rule: str, stack: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``stack[member, ...]`` (waveforms, or complex spectra for the spectral rules) → ``[...]``. ``weights``
    has one row per member and broadcasts against ``stack[i]`` from the left (``[members]`` or ``[members,
    signals]``)."""
    if rule in WEIGHTED:
        w = weights.reshape(weights.shape + (1,) * (stack.ndim - weights.ndim))
        return (stack * w).sum(axis=0) / w.sum(axis=0)
    if rule == "median-wave":
        return np.median(stack, axis=0)
    magnitude = np.abs(stack)
    pick = magnitude.argmax(axis=0) if rule == "max-spec" else magnitude.argmin(axis=0)
    return np.take_along_axis(stack, pick[None], axis=0)[0]
