"""How a long track is cut into overlapping segments and blended back (the one definition everyone uses).

Segments of ``segment`` samples start every ``segment - overlap`` samples; the last one may be shorter. Each
segment's output is weighted by `overlap_weights`: 1 in the middle, linear ramps over ``overlap`` samples at
both ends. Where two segments overlap, one ramp goes down while the next goes up and the two weights sum to
exactly 1, a linear cross-fade with no seam. The blended output is ``sum(w * y) / sum(w)``, which also covers
the track's first and last samples (the ramps never reach 0). Python separation, the exported TorchScript
module's chunked method and the C++ host all follow these two functions.
"""

from __future__ import annotations

from typing import List

import torch
from torch import Tensor

DEFAULT_OVERLAP = 0.25  # fraction of a segment shared with the next, unless a model's entry says otherwise


def segment_starts(total: int, segment: int, overlap: int) -> List[int]:
    """Start offsets of the segments that cover ``total`` samples."""
    if segment <= 0 or not 0 <= overlap < segment:
        raise ValueError(f"need 0 <= overlap < segment, got segment={segment}, overlap={overlap}")
    stride = segment - overlap
    starts: List[int] = [0]
    while starts[-1] + segment < total:
        starts.append(starts[-1] + stride)
    return starts


def overlap_weights(length: int, overlap: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Blending weights for one segment of ``length`` samples (``length`` may be shorter than a full segment)."""
    weights = torch.ones(length, dtype=dtype)
    ramp_length = min(overlap, length)
    if ramp_length > 0:
        ramp = torch.arange(1, ramp_length + 1, dtype=dtype) / float(overlap + 1)
        weights[:ramp_length] = torch.minimum(weights[:ramp_length], ramp)
        weights[length - ramp_length :] = torch.minimum(weights[length - ramp_length :], ramp.flip(0))
    return weights
