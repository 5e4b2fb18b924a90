"""TFC-TDF-UNet v3 (Kim, Lee, Jung, SDX 2023; the MDX23C models): spectrogram image in, stem images out.

The network maps the complex-as-channels image of a stereo mixture to one image per stem (mapping, no mask):

- input ``[batch, 2 * audio_channels, bins, frames]``, channels ``[Re L, Im L, Re R, Im R]``, the lowest
  ``bins`` bins of a centred STFT (the MDX23C models: periodic Hann, n_fft 8192, hop 1024, 4096 bins);
- output ``[batch, stems, 2 * audio_channels, bins, frames]``.

STFT and inverse STFT stay outside (the caller zero-fills the bins above ``bins`` before inverting).

Inside, ``subbands`` contiguous frequency bands are folded into channels (4096 bins → 4 bands of 1024), then:
1×1 first conv → per level a block of pre-activation TFC-TDF units and a strided down-sampling that adds
``growth`` channels → middle block → per level an up-sampling, the encoder output concatenated as skip and a
block (2C → C) → the decoder output multiplied by the first conv's output → a 1×1 conv stack over the
concatenation of the folded mixture and that product. No convolution or linear layer has a bias.

Blocks see ``[batch, channels, frames, bins]`` (time before frequency, as every svs-zoo block). Module names
follow svs-zoo's U-Net (``encoders``, ``downsampling``, ``mid_block``, ``upsampling``, ``decoders``);
``convert.py`` maps the reference checkpoints' names onto them. Everything is TorchScript-scriptable;
`optimize_v3` gives a faster, numerically equivalent inference variant.
"""

from __future__ import annotations

import copy
from typing import Callable, Optional

import torch
from torch import Tensor, nn

# make_block(in_channels, out_channels, bins, level, position) -> module mapping
# [B, in_channels, frames, bins] to [B, out_channels, frames, bins]; position is "encoder", "middle" or "decoder"
BlockBuilder = Callable[[int, int, int, int, str], nn.Module]


def make_norm(name: str, channels: int) -> nn.Module:
    """Normalisation by the reference configs' names: InstanceNorm, BatchNorm, GroupNorm<groups>, identity."""
    if name == "InstanceNorm":
        return nn.InstanceNorm2d(channels, affine=True)
    if name == "BatchNorm":
        return nn.BatchNorm2d(channels)
    if name.startswith("GroupNorm"):
        return nn.GroupNorm(int(name[len("GroupNorm") :]), channels)
    if name.lower() in ("identity", "none"):
        return nn.Identity()
    raise ValueError(f"unknown norm {name!r}: use InstanceNorm, BatchNorm, GroupNorm<groups> or identity")


def make_act(name: str) -> nn.Module:
    """Activation by the reference configs' names: gelu, relu, elu<alpha> (e.g. ``elu1.0``)."""
    if name == "gelu":
        return nn.GELU()
    if name == "relu":
        return nn.ReLU()
    if name.startswith("elu"):
        return nn.ELU(float(name[len("elu") :]))
    raise ValueError(f"unknown activation {name!r}: use gelu, relu or elu<alpha>")


class PreActConv(nn.Module):
    """norm → activation → bias-free 3×3 convolution (same size).

    ``winograd_min_pixels`` (set by `optimize_v3`; 0 = off): from that many frames × bins on, the convolution
    runs through NNPACK's Winograd F(6×6, 3×3) kernel: measured on a 2-core AVX2 CPU, 2-2.8× faster than
    oneDNN's direct convolution on the 128-512-channel images of levels 0-3, slower on the small deep ones.
    """

    def __init__(self, in_channels: int, out_channels: int, norm: str, act: str):
        super().__init__()
        self.norm = make_norm(norm, in_channels)
        self.act = make_act(act)
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.winograd_min_pixels = 0

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(self.norm(x))
        if 0 < self.winograd_min_pixels <= x.shape[2] * x.shape[3] and x.dtype == torch.float32 and x.is_cpu:
            # _nnpack_available() also initialises NNPACK, which its convolution needs first
            if torch._nnpack_available():
                return torch._nnpack_spatial_convolution(x, self.conv.weight, None, [1, 1], [1, 1])
        return self.conv(x)


class FrequencyBottleneck(nn.Module):
    """The v3 TDF: norm → act → linear bins→bins/factor → norm → act → linear back, on the last axis.

    One MLP over the frequency axis shared by every channel and frame; it links distant bins (harmonics).
    """

    def __init__(self, channels: int, bins: int, bottleneck_factor: int, norm: str, act: str):
        super().__init__()
        self.norm1 = make_norm(norm, channels)
        self.act1 = make_act(act)
        self.squeeze = nn.Linear(bins, bins // bottleneck_factor, bias=False)
        self.norm2 = make_norm(norm, channels)
        self.act2 = make_act(act)
        self.expand = nn.Linear(bins // bottleneck_factor, bins, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        x = self.squeeze(self.act1(self.norm1(x)))
        return self.expand(self.act2(self.norm2(x)))


class TFCTDFv3Unit(nn.Module):
    """One pre-activation unit: ``y = TFC1(x); y = y + TDF(y); out = TFC2(y) + shortcut(x)``."""

    def __init__(self, in_channels: int, out_channels: int, bins: int, bottleneck_factor: int, norm: str, act: str):
        super().__init__()
        self.tfc1 = PreActConv(in_channels, out_channels, norm, act)
        self.tdf = FrequencyBottleneck(out_channels, bins, bottleneck_factor, norm, act)
        self.tfc2 = PreActConv(out_channels, out_channels, norm, act)
        # 1×1 projection so that the residual also works when the channel count changes (decoder: 2C → C)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        skip = self.shortcut(x)
        x = self.tfc1(x)
        x = x + self.tdf(x)
        return self.tfc2(x) + skip


class TFCTDFv3Block(nn.Module):
    """``layers`` TFC-TDF units in a row on ``[B, C, frames, bins]``; the first one changes the channels."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        bins: int,
        layers: int = 2,
        bottleneck_factor: int = 4,
        norm: str = "InstanceNorm",
        act: str = "gelu",
    ):
        super().__init__()
        self.units = nn.ModuleList()
        for layer in range(layers):
            unit_in = in_channels if layer == 0 else out_channels
            self.units.append(TFCTDFv3Unit(unit_in, out_channels, bins, bottleneck_factor, norm, act))

    def forward(self, x: Tensor) -> Tensor:
        for unit in self.units:
            x = unit(x)
        return x


def tfc_tdf_v3_blocks(
    layers: int = 2, bottleneck_factor: int = 4, norm: str = "InstanceNorm", act: str = "gelu"
) -> BlockBuilder:
    """The builder `TFCTDFv3Net` uses by default: the same `TFCTDFv3Block` at every position."""

    def make_block(in_channels: int, out_channels: int, bins: int, level: int, position: str) -> nn.Module:
        return TFCTDFv3Block(in_channels, out_channels, bins, layers, bottleneck_factor, norm, act)

    return make_block


class Resample(nn.Module):
    """norm → act → bias-free strided (transposed) convolution, kernel = stride = (time, frequency) scale."""

    def __init__(
        self, in_channels: int, out_channels: int, scale: tuple[int, int], direction: str, norm: str, act: str
    ):
        super().__init__()
        self.norm = make_norm(norm, in_channels)
        self.act = make_act(act)
        if direction == "down":
            self.conv: nn.Module = nn.Conv2d(in_channels, out_channels, scale, stride=scale, bias=False)
        else:
            self.conv = nn.ConvTranspose2d(in_channels, out_channels, scale, stride=scale, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.act(self.norm(x)))


class OutputHead(nn.Module):
    """1×1 convs over [folded mixture, decoder features]: ``merge`` (→ C), act, ``to_stems`` (→ stems × image)."""

    def __init__(self, mixture_channels: int, channels: int, out_channels: int, act: str):
        super().__init__()
        self.merge = nn.Conv2d(mixture_channels + channels, channels, 1, bias=False)
        self.act = make_act(act)
        self.to_stems = nn.Conv2d(channels, out_channels, 1, bias=False)

    def forward(self, mixture: Tensor, features: Tensor) -> Tensor:
        return self.to_stems(self.act(self.merge(torch.cat((mixture, features), 1))))


class TFCTDFv3Net(nn.Module):
    """TFC-TDF-UNet v3 on spectrogram images; see the module docstring for shapes.

    stems:             output images (2 for vocals/other, 4 for the MUSDB18 model)
    audio_channels:    2 (stereo); the image has 2 × audio_channels channels
    bins:              frequency bins of the input image (the reference's ``dim_f``)
    subbands:          contiguous frequency bands folded into channels (``num_subbands``)
    channels, growth:  channels at level 0, added per level (``num_channels``, ``growth``)
    levels:            down-sampling steps (``num_scales``)
    scale:             (time, frequency) factor of each down-sampling (``scale``)
    layers, bottleneck_factor, norm, act: block hyper-parameters (``num_blocks_per_scale`` …)
    make_block:        optional `BlockBuilder`; default `tfc_tdf_v3_blocks(layers, bottleneck_factor, norm, act)`
    """

    def __init__(
        self,
        *,
        stems: int,
        audio_channels: int = 2,
        bins: int = 4096,
        subbands: int = 4,
        channels: int = 128,
        growth: int = 128,
        levels: int = 5,
        scale: tuple[int, int] = (2, 2),
        layers: int = 2,
        bottleneck_factor: int = 4,
        norm: str = "InstanceNorm",
        act: str = "gelu",
        make_block: Optional[BlockBuilder] = None,
    ):
        super().__init__()
        scale_t, scale_f = scale
        band_bins = bins // subbands
        if band_bins * subbands != bins or band_bins % scale_f**levels != 0:
            raise ValueError(
                f"bins={bins} must split into {subbands} subbands whose width divides by {scale_f}^{levels}"
            )
        if make_block is None:
            make_block = tfc_tdf_v3_blocks(layers, bottleneck_factor, norm, act)
        self.stems = stems
        self.subbands = subbands
        self.time_factor = scale_t**levels  # input frames must be a multiple of this
        image_channels = 2 * audio_channels * subbands

        self.first_conv = nn.Conv2d(image_channels, channels, 1, bias=False)
        self.encoders = nn.ModuleList()
        self.downsampling = nn.ModuleList()
        self.upsampling = nn.ModuleList()
        self.decoders = nn.ModuleList()
        c, f = channels, band_bins
        for level in range(levels):
            self.encoders.append(make_block(c, c, f, level, "encoder"))
            self.downsampling.append(Resample(c, c + growth, scale, "down", norm, act))
            c, f = c + growth, f // scale_f
        self.mid_block = make_block(c, c, f, levels, "middle")
        for level in reversed(range(levels)):  # deepest level first, as the forward pass runs
            self.upsampling.append(Resample(c, c - growth, scale, "up", norm, act))
            c, f = c - growth, f * scale_f
            self.decoders.append(make_block(2 * c, c, f, level, "decoder"))
        self.final_conv = OutputHead(image_channels, c, stems * image_channels, act)

    def forward(self, image: Tensor) -> Tensor:
        batch, image_channels, bins, frames = image.shape
        k = self.subbands
        # [B, 4, k*F, T] -> [B, 4k, F, T] (channel c*k + j holds band j of image channel c) -> [B, 4k, T, F];
        # transposing the narrow mixture rather than the features: 1×1 convs commute with it
        mixture = image.reshape(batch, image_channels * k, bins // k, frames).transpose(2, 3)
        first = self.first_conv(mixture)
        x = first
        skips: list[Tensor] = []
        for encoder, down in zip(self.encoders, self.downsampling):
            x = encoder(x)
            skips.append(x)
            x = down(x)
        x = self.mid_block(x)
        i = len(skips) - 1
        for up, decoder in zip(self.upsampling, self.decoders):
            x = decoder(torch.cat((up(x), skips[i]), 1))
            i -= 1
        # gating by the first conv's output: the authors found it reduces artifacts
        x = self.final_conv(mixture, x * first)
        # [B, S*4k, T, F] -> [B, S*4k, F, T] -> unfold the subbands back into frequency: [B, S, 4, k*F, T]
        return x.transpose(2, 3).reshape(batch, self.stems, image_channels, bins, frames)


def optimize_v3(network: TFCTDFv3Net, winograd_min_pixels: int = 4096) -> TFCTDFv3Net:
    """A copy of ``network`` for inference that computes the same function faster on CPU; still scriptable.

    The 3×3 convolutions on images of at least ``winograd_min_pixels`` frames × bins (levels 0-3 of a
    256-frame window) run through NNPACK's Winograd kernel where this PyTorch build has NNPACK; elsewhere
    nothing changes. Winograd is an exact rewrite of the convolution whose fp32 rounding differs: measured on
    the MDX23C configurations, the waveform moves by under 2e-6 of its peak (tests/test_mdx23c_fidelity.py).
    """
    network = copy.deepcopy(network).eval()
    for module in network.modules():
        if isinstance(module, PreActConv):
            module.winograd_min_pixels = winograd_min_pixels
    return network
