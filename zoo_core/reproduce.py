"""Separation exactly as the paper's authors ran it, to reproduce their numbers ("reproduce the paper").

The authors' ISMIR 2020 evaluation (``utils_ismir.separate`` of their Table-1 notebook) cut a track into
chunks of one training window, each padded by ``trim`` samples of context per side that are thrown away
after separation, and stitched the chunks without any cross-fade. `separate_like_authors` repeats that
procedure with svs-zoo's modules, so that the released checkpoints give the authors' own SDR figures.
For everyday use the model's own chunked separation (overlapping segments, cross-faded) is the better choice.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import ZooError
from .model import SeparationModel


def separate_like_authors(
    model: SeparationModel, mixture: Tensor, trim: int = 5000, batch_size: int = 16
) -> Tensor:
    """Estimates ``[stems, 2, N]`` of a stereo ``mixture`` ``[2, N]`` (float, at ``model.sample_rate``), the
    authors' way (for a single-target model the one stem, e.g. vocals).

    Each chunk is one training window (``model.settings.window_samples`` samples: 66,560 for the default model) of which
    the middle ``chunk - 2 * trim`` samples are kept. The track is laid out as
    ``[trim zeros | mixture | pad zeros | trim zeros]`` with ``pad`` bringing its length to the next multiple
    of the kept part (a full extra chunk when it already is one, as in the original code). Chunks are
    separated ``batch_size`` at a time on the model's device; the result is on the mixture's device.
    """
    if not isinstance(mixture, Tensor) or mixture.dim() != 2 or mixture.shape[0] != 2:
        shape = list(mixture.shape) if isinstance(mixture, Tensor) else type(mixture).__name__
        raise ZooError(f"the mixture must be a stereo tensor [2, samples], got {shape}")
    if not mixture.is_floating_point():
        raise ZooError(f"the mixture must be floating point, got {mixture.dtype}")
    if batch_size < 1:
        raise ZooError(f"batch_size must be at least 1, got {batch_size}")
    chunk = model.settings.window_samples
    kept = chunk - 2 * trim
    if trim < 0 or kept <= 0:
        raise ZooError(f"trim must be in 0..{(chunk - 1) // 2} for chunks of {chunk} samples, got {trim}")
    samples = mixture.shape[-1]
    pad = kept - samples % kept
    device = next(model.parameters()).device
    padded = F.pad(mixture.to(device=device, dtype=torch.float32), (trim, pad + trim))
    chunks = torch.stack([padded[:, start : start + chunk] for start in range(0, samples + pad, kept)])
    pieces = []
    with torch.inference_mode():
        for batch in chunks.split(batch_size):
            # one training window per chunk: exactly the frame count the network was trained on, no padding
            spec = model.stft(batch)
            estimate = model.from_image(model.core(model.framing(spec)), chunk, spec)
            pieces.append(estimate[..., trim : chunk - trim])
    kept_parts = torch.cat(pieces)  # [chunks, stems, 2, kept]
    estimates = kept_parts.permute(1, 2, 0, 3).reshape(kept_parts.shape[1], 2, -1)[..., :samples]
    return estimates.to(mixture.device)
