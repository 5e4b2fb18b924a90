"""A small band-split network: not a U-Net, not built from blocks, and not TorchScript-scriptable.

The idea is BSRNN's (Luo and Yu, "Music Source Separation with Band-split RNN", 2023): cut the spectrogram's
bins into bands, narrow at low frequencies where the voice's harmonics are dense and wide above; project each
band to ``features`` numbers per frame; model the sequence of frames within each band and the sequence of bands
within each frame with bidirectional GRUs, each with a residual connection; and estimate one complex mask per
band and stem that multiplies the mixture's STFT. This example keeps the structure at toy size.

It reads and returns the zoo's complex-as-channels image (``[B, 4, bins, T]``, channels Re L, Im L, Re R, Im R)
and is written in plain Python that TorchScript's compiler refuses (a starred assignment, comprehensions over
pairs), so the architecture declares ``torchscript="trace"``: the TorchScript export traces it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from zoo_core import NetworkContext
from zoo_core.errors import ConfigError

# complex-as-channels: 2 audio channels x (real, imaginary)
AUDIO_CHANNELS, PARTS = 2, 2


def band_edges(bins: int, bands: int, growth: float = 1.5) -> list[tuple[int, int]]:
    """``bands`` consecutive ranges covering ``bins``, each ``growth`` times wider than the one below."""
    if not 1 <= bands <= bins:
        raise ConfigError(f"cannot cut {bins} bins into {bands} bands")
    total = (growth**bands - 1) / (growth - 1)
    edges = [0]
    for k in range(1, bands):
        ideal = round(bins * (growth**k - 1) / (growth - 1) / total)
        edges.append(min(max(ideal, edges[-1] + 1), bins - (bands - k)))
    edges.append(bins)
    return list(zip(edges[:-1], edges[1:]))


class ResidualGRU(nn.Module):
    """``x + GRU(norm(x))`` along the second-to-last axis of ``[B, N, L, D]``, each of the N sequences alone."""

    def __init__(self, features: int):
        super().__init__()
        self.norm = nn.LayerNorm(features)
        self.rnn = nn.GRU(features, features // 2, batch_first=True, bidirectional=True)

    def forward(self, x: Tensor) -> Tensor:
        *outer, length, features = x.shape
        sequences = self.norm(x).reshape(-1, length, features)
        # the initial state made from the input: a GRU that makes its own pins it to the tracing device
        initial = sequences.new_zeros(2, sequences.shape[0], self.rnn.hidden_size)
        out, _ = self.rnn(sequences, initial)
        return x + out.reshape(x.shape)


class BandSplitNet(nn.Module):
    def __init__(self, ctx: NetworkContext, bands: int, features: int, layers: int):
        super().__init__()
        if ctx.in_channels != AUDIO_CHANNELS * PARTS:
            raise ConfigError("the band-split network needs the complex-as-channels image (representation = \"cac\")")
        self.time_factor: int = 1
        self.stems = ctx.stems
        self.edges = band_edges(ctx.bins, bands)
        widths = [stop - start for start, stop in self.edges]
        self.split = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(ctx.in_channels * w), nn.Linear(ctx.in_channels * w, features)) for w in widths
        )
        self.across_time = nn.ModuleList(ResidualGRU(features) for _ in range(layers))
        self.across_bands = nn.ModuleList(ResidualGRU(features) for _ in range(layers))
        self.masks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(features), nn.Linear(features, 2 * features), nn.Tanh(),
                          nn.Linear(2 * features, ctx.stems * ctx.in_channels * w))
            for w in widths
        )

    def forward(self, image: Tensor) -> Tensor:
        *_, bins, frames = image.shape
        frames_first = image.permute(0, 3, 1, 2)  # [B, T, C, F]
        z = torch.stack([split(frames_first[..., a:b].flatten(2)) for split, (a, b) in zip(self.split, self.edges)], 1)
        for time, bands in zip(self.across_time, self.across_bands):
            z = time(z)  # [B, bands, T, D]: each band's frames
            z = bands(z.transpose(1, 2)).transpose(1, 2)  # each frame's bands
        mask = torch.cat([
            head(z[:, k]).unflatten(-1, (self.stems, AUDIO_CHANNELS, PARTS, b - a))
            for k, (head, (a, b)) in enumerate(zip(self.masks, self.edges))
        ], -1).permute(0, 2, 3, 4, 5, 1)  # [B, stems, channel, re/im, F, T]
        mixture = image.unflatten(1, (AUDIO_CHANNELS, PARTS)).unsqueeze(1)
        real = mask[:, :, :, 0] * mixture[:, :, :, 0] - mask[:, :, :, 1] * mixture[:, :, :, 1]
        imaginary = mask[:, :, :, 0] * mixture[:, :, :, 1] + mask[:, :, :, 1] * mixture[:, :, :, 0]
        return torch.stack((real, imaginary), 3).flatten(2, 3)  # [B, stems, 4, F, T]


def build(ctx: NetworkContext, *, bands: int = 8, features: int = 32, layers: int = 1) -> BandSplitNet:
    return BandSplitNet(ctx, bands, features, layers)


def describe(network: BandSplitNet) -> dict:
    """What `zoo info` shows: each band's bins."""
    return {"levels": [{"band": k, "bins": f"{a}-{b - 1}", "width": b - a} for k, (a, b) in enumerate(network.edges)]}
