"""An example third-party architecture: a U-Net whose skips multiply instead of concatenate.

KUIELab-MDX-Net (TFC-TDF-U-Net v2, the same lab's 2021 successor of the paper's model) changed the skeleton in
two ways this example shows: the decoder multiplies the up-sampled features by the encoder's (no concatenation,
so decoder blocks see C channels, not 2C), and channels grow by ``growth`` at each level. Any registered block
fills it, through the same block interface as the paper's U-Net. It is registered with the hook
``register_architectures`` and chosen in ``models.toml`` with ``architecture = { name = "multiplicative-unet" }``.
"""

from __future__ import annotations

from torch import Tensor, nn

from zoo_core import BlockContext, NetworkContext
from zoo_core.errors import ConfigError


def _sampling(conv: nn.Module, channels: int) -> nn.Sequential:
    return nn.Sequential(conv, nn.BatchNorm2d(channels), nn.ReLU())


class MultiplicativeUNet(nn.Module):
    """``[B, C, bins, T]`` image → ``[B, stems, C, bins, T]``; bins and frames must halve ``levels`` times."""

    def __init__(self, ctx: NetworkContext, levels: int, channels: int, growth: int):
        super().__init__()
        if ctx.bins % 2**levels or ctx.frames % 2**levels:
            raise ConfigError(f"{ctx.bins} bins x {ctx.frames} frames cannot be halved {levels} times; set stft.bins")
        self.time_factor: int = 2**levels
        self.stems: int = ctx.stems
        self.first = _sampling(nn.Conv2d(ctx.in_channels, channels, 1), channels)
        self.encoders = nn.ModuleList()
        self.downsampling = nn.ModuleList()
        self.upsampling = nn.ModuleList()
        self.decoders = nn.ModuleList()
        c, bins, frames = channels, ctx.bins, ctx.frames
        for level in range(levels):
            self.encoders.append(ctx.block(BlockContext(c, c, bins, frames, level, "encoder")))
            self.downsampling.append(_sampling(nn.Conv2d(c, c + growth, 2, stride=2), c + growth))
            c, bins, frames = c + growth, bins // 2, frames // 2
        self.middle = ctx.block(BlockContext(c, c, bins, frames, levels, "middle"))
        for level in reversed(range(levels)):
            c, bins, frames = c - growth, bins * 2, frames * 2
            self.upsampling.append(_sampling(nn.ConvTranspose2d(c + growth, c, 2, stride=2), c))
            self.decoders.append(ctx.block(BlockContext(c, c, bins, frames, level, "decoder")))
        self.last = nn.Conv2d(c, ctx.in_channels * ctx.stems, 1)

    def forward(self, image: Tensor) -> Tensor:
        x = self.first(image).transpose(2, 3)  # blocks see [B, C, T, F]
        skips: list[Tensor] = []
        for encoder, down in zip(self.encoders, self.downsampling):
            x = encoder(x)
            skips.append(x)
            x = down(x)
        x = self.middle(x)
        i = len(skips) - 1
        for up, decoder in zip(self.upsampling, self.decoders):
            x = decoder(up(x) * skips[i])
            i -= 1
        out = self.last(x.transpose(2, 3))
        batch, channels, bins, frames = out.shape
        return out.reshape(batch, self.stems, channels // self.stems, bins, frames)


def build(ctx: NetworkContext, *, levels: int = 3, channels: int = 16, growth: int = 16) -> MultiplicativeUNet:
    return MultiplicativeUNet(ctx, levels, channels, growth)
