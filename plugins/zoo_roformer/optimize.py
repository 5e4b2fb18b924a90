"""The band-split RoFormers' exact inference rewrite (`optimize`, the architectures' hook): same output, less work.

Nearly all of a RoFormer's time is spent in the transformers' matrix products, which no rewrite makes cheaper
in float32; what it removes is the memory traffic around them, which costs a third of the time on one core:

- every pre-norm's gain (``sqrt(dim) * weight``) is folded into the columns of the linear layer that reads the
  normalised features (exact algebra: only float rounding changes), so a norm is one division;
- the attention's query/key/value projection and its per-head gate are one matrix product;
- in this process (``target="process"``, float32 or float64) the rotary embedding is one complex multiplication
  of the adjacent feature pairs (the same products and sums, in one pass); an export gets real arithmetic only;
- GELU, the gate and the residual additions run in place on tensors nothing else reads, so no fresh buffers are
  faulted in for them;
- in this process the feed-forward layers run on blocks of tokens, so their 4x-wide hidden activations are
  written and read back in the CPU's cache rather than its memory.

The result equals the built network's within float rounding (checked against the reference's golden outputs),
and the rewrite scripts with ``torch.jit.script``.
"""

from __future__ import annotations

from typing import List

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .network import Attention, AxialBlock, BandSplitRoformer, FeedForward, RMSNorm, Transformer, rotate, \
    rotary_tables


# tokens per feed-forward block in this process: 1024 x 4 x dim floats of hidden activations stay in a core's
# cache. Measured for dim 512 on one core, one layer over 801 frames x 62 bands: 1.42 s in blocks of 1024 (the
# fastest of 256 to 4096), 1.54 s unblocked; the whole chunk: docs/performance.md.
FEEDFORWARD_ROWS = 1024


def _gained(linear: nn.Linear, norm: RMSNorm) -> Tensor:
    """``linear.weight`` with ``norm``'s gain folded into its input columns (computed in float64)."""
    gain = norm.weight.double() * norm.scale
    return (linear.weight.double() * gain[None, :]).to(linear.weight.dtype)


class FoldedAttention(nn.Module):
    """`network.Attention` with its norm's gain folded, one projection for q, k, v and the gates."""

    def __init__(self, attention: Attention, complex_rotary: bool):
        super().__init__()
        self.heads = attention.heads
        self.dim_head = attention.dim_head
        self.inner = attention.heads * attention.dim_head
        self.complex_rotary = complex_rotary
        qkv, gates = attention.to_qkv, attention.to_gates
        self.project = nn.Linear(qkv.in_features, 3 * self.inner + self.heads)
        with torch.no_grad():
            self.project.weight.copy_(torch.cat((_gained(qkv, attention.norm), _gained(gates, attention.norm))))
            self.project.bias.copy_(torch.cat((gates.bias.new_zeros(3 * self.inner), gates.bias)))
        self.to_out = attention.to_out

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, turn: Tensor) -> Tensor:
        batch, length = x.shape[0], x.shape[1]
        projected = self.project(F.normalize(x, dim=-1))
        qkv = projected[..., : 3 * self.inner].view(batch, length, 3, self.heads, self.dim_head)
        if self.complex_rotary:
            # (even + i odd) * (cos + i sin): the rotation of every adjacent pair, in one kernel
            q = torch.view_as_real(torch.view_as_complex(qkv[:, :, 0].unflatten(-1, [-1, 2])) * turn)
            k = torch.view_as_real(torch.view_as_complex(qkv[:, :, 1].unflatten(-1, [-1, 2])) * turn)
            q, k = q.flatten(-2).transpose(1, 2), k.flatten(-2).transpose(1, 2)
        else:
            q = rotate(qkv[:, :, 0].transpose(1, 2), cos, sin)
            k = rotate(qkv[:, :, 1].transpose(1, 2), cos, sin)
        out = F.scaled_dot_product_attention(q, k, qkv[:, :, 2].transpose(1, 2))  # [batch, heads, length, dim_head]
        gates = projected[..., 3 * self.inner:].sigmoid()
        out = out.transpose(1, 2) * gates.unsqueeze(-1)
        return self.to_out(out.reshape(batch, length, self.inner)).add_(x)


class FoldedFeedForward(nn.Module):
    """`network.FeedForward` with its norm's gain folded; ``rows`` > 0 runs it on blocks of that many tokens, so
    the 4x-wide hidden activations of a block stay in the CPU's cache between the two products (in-process only:
    an exported graph keeps one product per layer)."""

    def __init__(self, feedforward: FeedForward, rows: int):
        super().__init__()
        self.up = feedforward.up
        self.down = feedforward.down
        self.rows = rows
        with torch.no_grad():
            self.up.weight.copy_(_gained(feedforward.up, feedforward.norm))

    def forward(self, x: Tensor) -> Tensor:
        tokens = x.numel() // x.shape[-1]
        if self.rows <= 0 or tokens <= self.rows:
            return self.down(torch.ops.aten.gelu_(self.up(F.normalize(x, dim=-1)))).add_(x)
        flat = x.reshape(tokens, x.shape[-1])
        out = torch.empty_like(flat)
        for start in range(0, tokens, self.rows):
            hidden = torch.ops.aten.gelu_(self.up(F.normalize(flat[start:start + self.rows], dim=-1)))
            torch.addmm(self.down.bias, hidden, self.down.weight.t(), out=out[start:start + self.rows])
        return out.add_(flat).view(x.shape)


class FoldedLayer(nn.Module):
    def __init__(self, attention: Attention, feedforward: FeedForward, complex_rotary: bool, rows: int):
        super().__init__()
        self.attention = FoldedAttention(attention, complex_rotary)
        self.feedforward = FoldedFeedForward(feedforward, rows)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, turn: Tensor) -> Tensor:
        return self.feedforward(self.attention(x, cos, sin, turn))


class FoldedTransformer(nn.Module):
    def __init__(self, transformer: Transformer, complex_rotary: bool, rows: int):
        super().__init__()
        self.layers = nn.ModuleList([FoldedLayer(layer.attention, layer.feedforward, complex_rotary, rows)
                                     for layer in transformer.layers])
        self.norm = transformer.norm

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, turn: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x, cos, sin, turn)
        return self.norm(x)


class FoldedAxialBlock(nn.Module):
    def __init__(self, block: AxialBlock, complex_rotary: bool, rows: int):
        super().__init__()
        self.time = FoldedTransformer(block.time, complex_rotary, rows)
        self.freq = FoldedTransformer(block.freq, complex_rotary, rows)

    def forward(self, x: Tensor, time: List[Tensor], band: List[Tensor]) -> Tensor:
        batch, frames, bands, dim = x.shape
        x = x.transpose(1, 2).reshape(batch * bands, frames, dim)
        x = self.time(x, time[0], time[1], time[2])
        x = x.reshape(batch, bands, frames, dim).transpose(1, 2).reshape(batch * frames, bands, dim)
        x = self.freq(x, band[0], band[1], band[2])
        return x.reshape(batch, frames, bands, dim)


class FoldedRoformer(nn.Module):
    """`BandSplitRoformer` with `FoldedAxialBlock`s; everything before and after the blocks is the original's."""

    def __init__(self, network: BandSplitRoformer, complex_rotary: bool, rows: int):
        super().__init__()
        self.network = network
        self.complex_rotary = complex_rotary
        self.blocks = nn.ModuleList([FoldedAxialBlock(block, complex_rotary, rows) for block in network.blocks])
        network.blocks = nn.ModuleList()  # the folded blocks own the weights now
        self.time_factor = network.time_factor
        self.stems = network.stems
        self.bins = network.bins

    def tables(self, length: int, dtype: torch.dtype) -> List[Tensor]:
        cos, sin = rotary_tables(length, self.network.inverse_frequencies, dtype)
        if self.complex_rotary:
            return [cos, sin, torch.complex(cos, sin)[:, None, :]]  # [length, heads (broadcast), dim_head / 2]
        return [cos, sin, cos]  # real arithmetic: the third (complex) table is never read

    def forward(self, image: Tensor) -> Tensor:
        network = self.network
        spec, features = network.features(image)
        x = network.band_split(features)
        time = self.tables(x.shape[1], x.dtype)
        band = self.tables(x.shape[2], x.dtype)
        for block in self.blocks:
            x = block(x, time, band)
        return network.masked(network.final_norm(x), spec, image.shape[1])


def optimize(network: BandSplitRoformer, dtype: torch.dtype, target: str) -> nn.Module:
    """The folded network (the zoo hands over a copy); feed-forward blocks of `FEEDFORWARD_ROWS` tokens and complex
    rotary arithmetic only where the network stays in this process (complex numbers: float32, float64)."""
    in_process = target == "process"
    complex_rotary = in_process and dtype in (torch.float32, torch.float64)
    return FoldedRoformer(network.eval(), complex_rotary, FEEDFORWARD_ROWS if in_process else 0)
