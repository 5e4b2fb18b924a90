"""`SeparatorArtifact`: the module that the TorchScript export scripts, waveform in and stems out.

``forward(mixture [batch, 2, samples]) -> [batch, stems, 2, samples]`` with the stems named by ``stems()``:
every stem the model estimates, plus accompaniment (mixture minus vocals, computed inside) for a model that
estimates vocals alone (`zoo_core.stems`). ``separate_chunked`` runs long inputs segment by segment and blends
them with the one definition in `zoo_core.chunking`, so Python and a C++ host that calls it get the same numbers.
Every tensor made inside follows the input's device and dtype; nothing pins the file to CPU or CUDA.
"""

from __future__ import annotations

from typing import List

import torch
from torch import Tensor, nn

from ..chunking import overlap_weights, segment_starts
from ..model import SeparationModel
from ..stems import has_complement, output_stems


class SeparatorArtifact(nn.Module):
    def __init__(self, model: SeparationModel, segment: int, overlap: int):
        super().__init__()
        self.model = model
        self.sample_rate_hz: int = model.sample_rate
        self.audio_channel_count: int = 2
        self.stem_names: List[str] = output_stems(model.stems)
        self.model_stem_count: int = len(model.stems)
        self.complement: bool = has_complement(model.stems)
        self.segment_samples: int = segment
        self.overlap_samples: int = overlap

    def _check(self, mixture: Tensor) -> None:
        if mixture.dim() != 3 or mixture.shape[1] != self.audio_channel_count:
            raise ValueError("expected a stereo mixture shaped [batch, 2, samples]")

    def _with_complement(self, mixture: Tensor, estimates: Tensor) -> Tensor:
        """[B, 1, 2, N] vocals → [B, 2, 2, N] (vocals, mixture − vocals); other models' estimates as they are."""
        if self.complement:
            return torch.cat((estimates, mixture.unsqueeze(1) - estimates), 1)
        return estimates

    def forward(self, mixture: Tensor) -> Tensor:
        self._check(mixture)
        return self._with_complement(mixture, self.model(mixture))

    @torch.jit.export
    def separate_chunked(self, mixture: Tensor, segment: int, overlap: int, batch_size: int) -> Tensor:
        """Like ``forward`` for inputs of any length, ``batch_size`` segments at a time.

        Each segment runs at its own length (the last one may be shorter), so one segment's result does not
        depend on how the others are batched.
        """
        self._check(mixture)
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        batch = mixture.shape[0]
        total = mixture.shape[-1]
        starts = segment_starts(total, segment, overlap)
        shape = [batch, self.model_stem_count, mixture.shape[1], total]
        estimates = torch.zeros(shape, dtype=mixture.dtype, device=mixture.device)
        weight_sum = torch.zeros(total, dtype=mixture.dtype, device=mixture.device)
        first = 0
        while first < len(starts):
            length = min(segment, total - starts[first])
            pieces: List[Tensor] = []
            last = first
            while last < len(starts) and len(pieces) < batch_size and min(segment, total - starts[last]) == length:
                pieces.append(mixture[:, :, starts[last] : starts[last] + length])
                last += 1
            outputs = self.model(torch.cat(pieces, 0))
            weights = overlap_weights(length, overlap).to(device=mixture.device, dtype=mixture.dtype)
            for k in range(last - first):
                start = starts[first + k]
                estimates[..., start : start + length] += outputs[k * batch : (k + 1) * batch] * weights
                weight_sum[start : start + length] += weights
            first = last
        return self._with_complement(mixture, estimates / weight_sum)

    @torch.jit.export
    def sample_rate(self) -> int:
        return self.sample_rate_hz

    @torch.jit.export
    def audio_channels(self) -> int:
        return self.audio_channel_count

    @torch.jit.export
    def stems(self) -> List[str]:
        return self.stem_names

    @torch.jit.export
    def default_segment(self) -> int:
        return self.segment_samples

    @torch.jit.export
    def default_overlap(self) -> int:
        return self.overlap_samples
