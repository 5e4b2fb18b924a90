"""Band-split RoFormer networks (BS-RoFormer, Lu et al. 2023; Mel-Band RoFormer, Wang et al. 2023) in plain torch.

The network reads the zoo's complex-as-channels image ``[B, 2C, bins, T]`` (``[Re, Im]`` per audio channel), cuts
its bins into bands (each band's bins x channels x (re, im) flattened, as the reference orders them), projects
every band to ``dim`` features, runs ``depth`` pairs of transformers across time and across bands (rotary
positions, gated attention), estimates one complex mask per stem and returns the image multiplied by it
(complex multiplication written out on the real channels, so no complex tensor is in any exported graph):
``[B, stems, 2C, bins, T]``. Mel bands overlap; a bin in several bands gets the average of their masks.

This is the trainable network, laid out as the reference is (its checkpoints map onto it name by name): rotary
tables once per call instead of twice per attention layer, one fused attention call, no einops copies, band
indices and averaging tables built once. Inference runs `optimize.py`'s exact rewrite of it.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ROTARY_BASE = 10000.0


class RMSNorm(nn.Module):
    """x / |x| * sqrt(dim) * weight (the reference's order of operations)."""

    def __init__(self, dim: int):
        super().__init__()
        self.scale = dim**0.5
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(x, dim=-1) * self.scale * self.weight


def rotary_inverse_frequencies(dim_head: int) -> Tensor:
    """1 / 10000^(2i/d) in float32, as rotary-embedding-torch computes them (the released files store these)."""
    return 1.0 / (ROTARY_BASE ** (torch.arange(0, dim_head, 2)[: dim_head // 2].float() / dim_head))


def rotary_tables(length: int, inverse_frequencies: Tensor, dtype: torch.dtype) -> List[Tensor]:
    """cos and sin of position x frequency, ``[length, dim_head / 2]``, in ``dtype`` (computed in it, as the
    reference does, so the tables round alike)."""
    positions = torch.arange(length, device=inverse_frequencies.device).to(dtype)
    angles = positions[:, None] * inverse_frequencies.to(dtype)[None, :]
    return [angles.cos(), angles.sin()]


def rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotary position embedding on adjacent pairs of the last axis; positions along axis -2."""
    pairs = x.unflatten(-1, [x.shape[-1] // 2, 2])
    even, odd = pairs[..., 0], pairs[..., 1]
    return torch.stack((even * cos - odd * sin, odd * cos + even * sin), -1).flatten(-2)


class Attention(nn.Module):
    """Pre-norm multi-head self-attention with rotary positions and a sigmoid gate per head."""

    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        self.heads = heads
        self.dim_head = dim_head
        self.norm = RMSNorm(dim)
        self.to_qkv = nn.Linear(dim, 3 * heads * dim_head, bias=False)
        self.to_gates = nn.Linear(dim, heads)
        self.to_out = nn.Linear(heads * dim_head, dim, bias=False)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        x = self.norm(x)
        batch, length = x.shape[0], x.shape[1]
        qkv = self.to_qkv(x).view(batch, length, 3, self.heads, self.dim_head).permute(2, 0, 3, 1, 4)
        q, k, v = rotate(qkv[0], cos, sin), rotate(qkv[1], cos, sin), qkv[2]
        out = F.scaled_dot_product_attention(q, k, v)
        out = out * self.to_gates(x).transpose(1, 2).unsqueeze(-1).sigmoid()
        return self.to_out(out.transpose(1, 2).reshape(batch, length, self.heads * self.dim_head))


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int):
        super().__init__()
        self.norm = RMSNorm(dim)
        self.up = nn.Linear(dim, dim * mult)
        self.down = nn.Linear(dim * mult, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.down(F.gelu(self.up(self.norm(x))))


class TransformerLayer(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int, ff_mult: int):
        super().__init__()
        self.attention = Attention(dim, heads, dim_head)
        self.feedforward = FeedForward(dim, ff_mult)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        x = self.attention(x, cos, sin) + x
        return self.feedforward(x) + x


class Transformer(nn.Module):
    """``[N, L, dim]`` → same: ``depth`` layers, then an RMSNorm where ``norm_output`` (Mel-Band RoFormer)."""

    def __init__(self, dim: int, depth: int, heads: int, dim_head: int, ff_mult: int, norm_output: bool):
        super().__init__()
        self.layers = nn.ModuleList([TransformerLayer(dim, heads, dim_head, ff_mult) for _ in range(depth)])
        self.norm = RMSNorm(dim) if norm_output else nn.Identity()

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x, cos, sin)
        return self.norm(x)


class AxialBlock(nn.Module):
    """A transformer along time (per band), then one along the bands (per frame); ``x`` is ``[B, T, bands, dim]``."""

    def __init__(self, dim: int, time_depth: int, freq_depth: int, heads: int, dim_head: int, ff_mult: int,
                 norm_output: bool):
        super().__init__()
        self.time = Transformer(dim, time_depth, heads, dim_head, ff_mult, norm_output)
        self.freq = Transformer(dim, freq_depth, heads, dim_head, ff_mult, norm_output)

    def forward(self, x: Tensor, time_cos: Tensor, time_sin: Tensor, band_cos: Tensor, band_sin: Tensor) -> Tensor:
        batch, frames, bands, dim = x.shape
        x = x.transpose(1, 2).reshape(batch * bands, frames, dim)
        x = self.time(x, time_cos, time_sin)
        x = x.reshape(batch, bands, frames, dim).transpose(1, 2).reshape(batch * frames, bands, dim)
        x = self.freq(x, band_cos, band_sin)
        return x.reshape(batch, frames, bands, dim)


class BandProjection(nn.Module):
    def __init__(self, width: int, dim: int):
        super().__init__()
        self.norm = RMSNorm(width)
        self.project = nn.Linear(width, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.project(self.norm(x))


class BandSplit(nn.Module):
    """``[..., sum(widths)]`` → ``[..., bands, dim]``: each band's slice normalised and projected."""

    def __init__(self, widths: Sequence[int], dim: int):
        super().__init__()
        self.widths: List[int] = [int(w) for w in widths]
        self.bands = nn.ModuleList([BandProjection(w, dim) for w in self.widths])

    def forward(self, x: Tensor) -> Tensor:
        pieces = x.split(self.widths, -1)
        outs: List[Tensor] = []
        for i, band in enumerate(self.bands):
            outs.append(band(pieces[i]))
        return torch.stack(outs, -2)


class BandMask(nn.Module):
    """One band's mask: an MLP (tanh between its linear layers) to twice the band's width, then a GLU."""

    def __init__(self, dim: int, hidden: int, hidden_layers: int, width: int):
        super().__init__()
        sizes = [dim] + [hidden] * hidden_layers + [2 * width]
        self.layers = nn.ModuleList([nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])])
        self.last = len(sizes) - 2

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < self.last:
                x = torch.tanh(x)
        return F.glu(x, -1)


class MaskEstimator(nn.Module):
    """``[..., bands, dim]`` → ``[..., sum(widths)]``: one stem's mask, band after band."""

    def __init__(self, widths: Sequence[int], dim: int, hidden: int, hidden_layers: int):
        super().__init__()
        self.bands = nn.ModuleList([BandMask(dim, hidden, hidden_layers, int(w)) for w in widths])

    def forward(self, x: Tensor) -> Tensor:
        features = x.unbind(-2)
        outs: List[Tensor] = []
        for i, band in enumerate(self.bands):
            outs.append(band(features[i]))
        return torch.cat(outs, -1)


class BandSplitRoformer(nn.Module):
    """Both architectures: ``positions`` (mel bands) gathers overlapping bands from the (bin, channel) axis and
    ``average_index``/``band_counts`` average their masks back; BS-RoFormer's bands are consecutive (no gather).

    ``band_widths`` count bins; the features of a band are ``width * channels * 2``.
    """

    def __init__(
        self,
        *,
        stems: int,
        audio_channels: int,
        bins: int,
        band_widths: Sequence[int],
        dim: int,
        depth: int,
        time_transformer_depth: int,
        freq_transformer_depth: int,
        heads: int,
        dim_head: int,
        ff_mult: int = 4,
        mask_hidden_layers: int,
        mlp_expansion_factor: int,
        norm_output: bool,
        final_norm: bool,
        zero_dc: bool,
        positions: Optional[Tensor] = None,
        average_index: Optional[Tensor] = None,
        band_counts: Optional[Tensor] = None,
    ):
        super().__init__()
        self.time_factor = 1
        self.stems = stems
        self.audio_channels = audio_channels
        self.bins = bins
        self.gathers = positions is not None
        widths = [int(w) * audio_channels * 2 for w in band_widths]
        self.band_split = BandSplit(widths, dim)
        self.blocks = nn.ModuleList([
            AxialBlock(dim, time_transformer_depth, freq_transformer_depth, heads, dim_head, ff_mult, norm_output)
            for _ in range(depth)
        ])
        self.final_norm = RMSNorm(dim) if final_norm else nn.Identity()
        hidden = dim * mlp_expansion_factor
        self.mask_estimators = nn.ModuleList(
            [MaskEstimator(widths, dim, hidden, mask_hidden_layers) for _ in range(stems)]
        )
        empty = torch.zeros(0, dtype=torch.int64)
        # built once, never weights: they follow .to(device) and stay out of state dicts
        self.register_buffer("inverse_frequencies", rotary_inverse_frequencies(dim_head), persistent=False)
        self.register_buffer("positions", empty if positions is None else positions, persistent=False)
        self.register_buffer("average_index", empty[None] if average_index is None else average_index,
                             persistent=False)
        counts = torch.ones(0) if band_counts is None else band_counts.float()
        self.register_buffer("band_counts", counts.reshape(-1, 1), persistent=False)
        keep = torch.ones(bins, 1, 1)
        if zero_dc:
            keep[0] = 0.0  # the reference filters DC out of every estimate
        self.register_buffer("keep_bins", keep, persistent=False)

    def forward(self, image: Tensor) -> Tensor:
        spec, features = self.features(image)
        x = self.band_split(features)
        time_cos, time_sin = rotary_tables(x.shape[1], self.inverse_frequencies, x.dtype)
        band_cos, band_sin = rotary_tables(x.shape[2], self.inverse_frequencies, x.dtype)
        for block in self.blocks:
            x = block(x, time_cos, time_sin, band_cos, band_sin)
        return self.masked(self.final_norm(x), spec, image.shape[1])

    def features(self, image: Tensor) -> List[Tensor]:
        """The image as ``[B, T, bins, C, re/im]`` (the reference's (bin, channel, re/im) order per frame), and
        every band's features, band after band, ``[B, T, sum(widths)]``."""
        batch, doubled, bins, frames = image.shape
        spec = image.view(batch, doubled // 2, 2, bins, frames).permute(0, 4, 3, 1, 2)
        if self.gathers:
            features = spec.reshape(batch, frames, bins * (doubled // 2), 2).index_select(2, self.positions)
            features = features.reshape(batch, frames, -1)
        else:
            features = spec.reshape(batch, frames, bins * doubled)
        return [spec, features]

    def masked(self, x: Tensor, spec: Tensor, doubled: int) -> Tensor:
        """Band features ``[B, T, bands, dim]`` → every stem's masked image ``[B, stems, 2C, bins, T]``."""
        batch, frames, bins, channels = spec.shape[0], spec.shape[1], spec.shape[2], spec.shape[3]
        masks: List[Tensor] = []
        for estimator in self.mask_estimators:
            masks.append(estimator(x))
        mask = torch.stack(masks, 1)  # [B, stems, T, features]
        if self.gathers:
            mask = self.average(mask.reshape(batch, self.stems, frames, -1, 2))
        mask = mask.reshape(batch, self.stems, frames, bins, channels, 2) * self.keep_bins
        spec = spec.unsqueeze(1)
        real = spec[..., 0] * mask[..., 0] - spec[..., 1] * mask[..., 1]
        imag = spec[..., 0] * mask[..., 1] + spec[..., 1] * mask[..., 0]
        out = torch.stack((real, imag), -1)  # [B, stems, T, F, C, re/im]
        return out.permute(0, 1, 4, 5, 3, 2).reshape(batch, self.stems, doubled, bins, frames)

    def average(self, mask: Tensor) -> Tensor:
        """``[B, S, T, gathered, 2]`` → ``[B, S, T, bins * channels, 2]``: each position's mean over its bands."""
        padded = torch.cat((mask, mask.new_zeros([mask.shape[0], mask.shape[1], mask.shape[2], 1, 2])), 3)
        total = padded.index_select(3, self.average_index[0])
        for row in range(1, self.average_index.shape[0]):
            total = total + padded.index_select(3, self.average_index[row])
        return total / self.band_counts.to(mask.dtype)
