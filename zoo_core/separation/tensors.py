"""`separate`: the tensor API: a waveform in, ``{stem: waveform}`` out, through the same engine as files."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import Tensor

from ..errors import ZooError
from ..stems import output_stems
from .engine import DEFAULT_BATCH_SIZE, SeparationSettings, separate_blocks


def separate(
    model,
    waveform: Tensor,
    sample_rate: int,
    *,
    segment: Optional[float] = None,
    overlap: Optional[float] = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    method: str = "overlap-add",
) -> dict[str, Tensor]:
    """Separate a waveform held in memory.

    Args:
        model: a `SeparationModel` (or its TorchScript module), already on its device and in eval mode.
        waveform: ``[channels, samples]`` or ``[batch, channels, samples]``, mono or stereo, any length.
        sample_rate: the waveform's rate; other rates than the model's are resampled there and back.
        segment: segment length in seconds (default: the model's training window).
        overlap: fraction of a segment shared with the next one (linear cross-fade); None: the model's default.
        batch_size: segments per model call.
        method: ``"overlap-add"`` (default) or ``"authors"`` (the original ISMIR 2020 chunk-and-trim).

    Returns:
        ``{stem: waveform}`` for every stem of ``output_stems(model.stems)`` (``{"vocals", "accompaniment"}`` for
        the paper's models): float32 CPU tensors with the input's shape and rate; accompaniment = mixture − vocals.

    Example::

        model = zoo_core.load("NAME")
        stems = separate(model, torch.randn(2, 44100 * 5), 44100)
    """
    options = SeparationSettings(segment=segment, overlap=overlap, batch_size=batch_size, method=method)
    options.validate()
    if waveform.dim() not in (2, 3):
        raise ZooError(f"waveform must be [channels, samples] or [batch, channels, samples], got {list(waveform.shape)}")
    batched = waveform if waveform.dim() == 3 else waveform.unsqueeze(0)
    if batched.shape[-1] == 0:
        raise ZooError("waveform has no samples")
    if batched.shape[1] not in (1, 2):
        raise ZooError(f"{batched.shape[1]} channels; only mono and stereo are supported")
    if not torch.isfinite(batched).all():
        raise ZooError("waveform contains NaN or infinite samples")
    names = output_stems(model.stems)
    results: dict[str, list[Tensor]] = {stem: [] for stem in names}
    for item in batched:
        mixture = item.detach().to("cpu", torch.float32).T.contiguous().numpy()
        pieces = list(separate_blocks(model, [mixture], sample_rate, item.shape[0], options))
        for stem in names:
            results[stem].append(torch.from_numpy(np.concatenate([p[stem] for p in pieces]).T.copy()))
    return {stem: torch.stack(parts) if waveform.dim() == 3 else parts[0] for stem, parts in results.items()}
