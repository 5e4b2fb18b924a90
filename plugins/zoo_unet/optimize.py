"""The U-Net's exact inference rewrite (`optimize`, its architecture's hook): same results, less work per segment.

- every BatchNorm that directly follows a convolution is folded into that convolution's weights and bias
  (exact algebra; only float rounding changes);
- the per-frame 1-D convolutions of the time-distributed blocks (TDC) and of frequency-only sampling become
  ``1 x k`` 2-D convolutions over the ``[batch, channels, frames, bins]`` image itself, so no frame-batching
  transposes are needed and the image can stay in one memory layout;
- the dense blocks' ReLU runs inside the oneDNN convolution (CPU), and in the NCHW layout each unit's output goes
  into one preallocated buffer instead of a fresh concatenation of all earlier outputs per unit;
- with ``channels_last`` (the CPU default) the U-Net runs in the NHWC layout, where oneDNN convolutions are
  faster on these shapes (docs/performance.md), and the frequency MLPs (TDF) multiply NHWC frames directly.

The float32 result equals the original network's within float rounding (relative 1e-5), and the rewritten
network scripts with ``torch.jit.script`` like the original. An ONNX export gets standard operators only.
"""

from __future__ import annotations

import copy
from typing import Optional

import torch
from torch import Tensor, nn

from zoo_core import ZooError

from .layers import DenseConvStack, FrequencyMLP, FrequencySampling

_CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def fold_batchnorm(conv: nn.Module, norm: nn.Module) -> nn.Module:
    """A copy of ``conv`` whose output equals ``norm(conv(x))`` with ``norm`` in eval mode (running statistics)."""
    if norm.running_mean is None or norm.running_var is None:
        raise ZooError("cannot fold a BatchNorm without running statistics into a convolution")
    fused = copy.deepcopy(conv)
    scale = torch.rsqrt(norm.running_var.double() + norm.eps)
    shift = -norm.running_mean.double() * scale
    if norm.weight is not None:
        scale = scale * norm.weight.double()
        shift = shift * norm.weight.double() + norm.bias.double()
    # output channels are dim 0 of a convolution's weight, dim 1 of a transposed convolution's (groups = 1)
    out_dim = 1 if isinstance(conv, (nn.ConvTranspose1d, nn.ConvTranspose2d)) else 0
    shape = [1] * conv.weight.dim()
    shape[out_dim] = -1
    bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
    with torch.no_grad():
        fused.weight.copy_((conv.weight.double() * scale.reshape(shape)).to(conv.weight.dtype))
        fused.bias = nn.Parameter((bias * scale + shift).to(conv.weight.dtype))
    return fused


def as_frequency_conv2d(conv: nn.Module) -> nn.Module:
    """A per-frame 1-D (transposed) convolution over bins as the equal ``1 x k`` 2-D one over ``[B, C, T, F]``."""
    kind = nn.ConvTranspose2d if isinstance(conv, nn.ConvTranspose1d) else nn.Conv2d
    converted = kind(
        conv.in_channels,
        conv.out_channels,
        (1, conv.kernel_size[0]),
        stride=(1, conv.stride[0]),
        padding=(0, conv.padding[0]),
        bias=conv.bias is not None,
    )
    with torch.no_grad():
        converted.weight.copy_(conv.weight.unsqueeze(2))
        if conv.bias is not None:
            converted.bias.copy_(conv.bias)
    return converted


class DenseUnit(nn.Module):
    """One dense-block unit for inference: convolution (BatchNorm folded in), then the activation.

    On CPU a ReLU runs inside the oneDNN convolution, while its output is still in cache. The fused operator
    exists for CPU tensors only: a module optimised on CPU and moved to CUDA (one TorchScript file runs on both)
    takes the plain convolution there.
    """

    def __init__(self, conv: nn.Conv2d, activation: nn.Module, fuse_relu: bool):
        super().__init__()
        self.conv = conv
        self.activation = activation
        self.fuse_relu: bool = fuse_relu and isinstance(activation, nn.ReLU)
        self.padding: list[int] = [conv.kernel_size[0] // 2, conv.kernel_size[1] // 2]

    def forward(self, x: Tensor) -> Tensor:
        if self.fuse_relu and x.is_cpu:  # a CPU kernel: an exported file may run on CUDA too
            return torch.ops.mkldnn._convolution_pointwise(
                x, self.conv.weight, self.conv.bias, self.padding, [1, 1], [1, 1], 1, "relu", [], ""
            )
        return self.activation(self.conv(x))


class FusedDenseStack(DenseConvStack):
    """`DenseConvStack` for inference, built from `DenseUnit`s; 1-D (TDC) units become ``1 x k`` 2-D ones.

    Unit ``j`` reads ``[out_j-1, ..., out_1, x]`` (newest first). In the NCHW layout (batch 1) that input is a
    trailing slice of one preallocated buffer that holds ``x`` at its end and each new output just before the
    previous one: a linear number of copies instead of a concatenation per unit. In the channels-last layout a
    channel slice is not dense, so there the features are concatenated (oneDNN's NHWC convolutions more than
    more than pay for it on these shapes, see README's Performance section).
    """

    def __init__(self, stack: DenseConvStack, fuse_relu: bool, channels_last: bool):
        nn.Module.__init__(self)  # the units are built here, from the trained stack's
        self.channels_last = channels_last
        self.time_distributed = False  # 1-D units became 1 x k 2-D ones: no per-frame reshaping
        self.H = nn.ModuleList()
        for unit in stack.H:
            conv, norm, activation = unit[0], unit[1], unit[2]
            if stack.time_distributed:
                conv = as_frequency_conv2d(conv)
            self.H.append(DenseUnit(fold_batchnorm(conv, norm), activation, fuse_relu))
        self.growth: int = stack.H[0][0].out_channels
        self.in_channels: int = stack.H[0][0].in_channels

    def forward(self, x: Tensor) -> Tensor:
        if self.channels_last:
            # the U-Net's first block gets a transposed view; one copy here saves one per unit
            x = x.contiguous(memory_format=torch.channels_last)
        elif x.is_contiguous() and x.shape[0] == 1:
            return self._buffered(x)
        return self.dense(x)

    def _buffered(self, x: Tensor) -> Tensor:
        count = len(self.H)
        total = self.in_channels + self.growth * (count - 1)
        batch, _, frames, bins = x.shape
        features = torch.empty((batch, total, frames, bins), dtype=x.dtype, device=x.device)
        start = total - self.in_channels
        features[:, start:] = x
        out = x
        index = 0
        for unit in self.H:
            out = unit(features[:, start:])
            index += 1
            if index < count:
                start -= self.growth
                features[:, start : start + self.growth] = out
        return out


class BinLinear(nn.Module):
    """``nn.Linear`` over the last (bins) axis of ``[B, C, T, F]`` that keeps a channels-last input channels-last.

    In NHWC memory every frame is a dense ``[F, C]`` matrix, so the layer is one batched ``W @ X[b, t]``:
    no transposing copy in or out (``nn.Linear`` on that layout runs through a strided slow path).
    """

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.weight = nn.Parameter(linear.weight.detach().clone(), requires_grad=False)
        # parameters (not plain attributes) so that .to(dtype) converts them with the rest of the U-Net
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), requires_grad=False)

    def forward(self, x: Tensor) -> Tensor:
        if not x.is_contiguous(memory_format=torch.channels_last) or x.is_contiguous():
            return nn.functional.linear(x, self.weight, self.bias)
        batch, channels, frames, bins = x.shape
        units = self.weight.shape[0]
        frames_first = x.permute(0, 2, 3, 1).reshape(batch * frames, bins, channels)
        out = torch.bmm(self.weight.expand(batch * frames, units, bins), frames_first)
        bias = self.bias
        if bias is not None:
            out = out + bias.unsqueeze(1)
        return out.reshape(batch, frames, units, channels).permute(0, 3, 1, 2)


class ChannelsLast(nn.Module):
    """Runs the wrapped U-Net in the channels-last (NHWC) layout; a contiguous NCHW result out."""

    def __init__(self, unet: nn.Module):
        super().__init__()
        self.unet = unet

    def forward(self, image: Tensor) -> Tensor:
        return self.unet(image.contiguous(memory_format=torch.channels_last)).contiguous()


def _rewrite(module: nn.Module, fuse_relu: bool, channels_last: bool) -> None:
    """Replace, in place and depth first, what `optimize` rewrites (see the module docstring)."""
    for name, child in list(module.named_children()):
        if isinstance(child, FusedDenseStack):
            continue  # already rewritten
        if isinstance(child, DenseConvStack):
            setattr(module, name, FusedDenseStack(child, fuse_relu, channels_last))
        elif isinstance(child, FrequencySampling):
            setattr(module, name, nn.Sequential(fold_batchnorm(as_frequency_conv2d(child.conv), child.bn)))
        elif isinstance(child, FrequencyMLP):
            for index, layer in enumerate(child.mlp):
                if isinstance(layer, nn.Linear):
                    child.mlp[index] = BinLinear(layer)
        else:
            _rewrite(child, fuse_relu, channels_last)
    if isinstance(module, nn.Sequential):
        _fold_sequential(module)


def _fold_sequential(sequence: nn.Sequential) -> None:
    """conv → BatchNorm pairs inside a Sequential become one convolution (the BatchNorm slot an Identity)."""
    children = list(sequence)
    for index in range(len(children) - 1):
        conv, norm = children[index], children[index + 1]
        if isinstance(conv, _CONVOLUTIONS) and isinstance(norm, _NORMS) and conv.groups == 1:
            sequence[index] = fold_batchnorm(conv, norm)
            sequence[index + 1] = nn.Identity()


def optimize(
    unet: nn.Module,
    dtype: torch.dtype,
    target: str,
    channels_last: Optional[bool] = None,
    fuse_relu: Optional[bool] = None,
) -> nn.Module:
    """The rewritten U-Net (in place: the zoo hands over a copy); see the module docstring. ``channels_last``
    and ``fuse_relu`` default to on for a CPU network (fused ReLU where oneDNN has the kernel for ``dtype``),
    and to off for ``target="onnx"``, whose runtimes know neither."""
    device = next(unet.parameters()).device
    portable_ops = target == "onnx"
    if channels_last is None:
        channels_last = device.type == "cpu" and not portable_ops
    # oneDNN's fused convolution + ReLU has a bfloat16 kernel only on CPUs with AVX-512 BF16 (or AVX-NE-CONVERT)
    fuse_relu = (fuse_relu if fuse_relu is not None else not portable_ops) and device.type == "cpu" and (
        dtype == torch.float32 or torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )
    _rewrite(unet, fuse_relu, channels_last)
    if channels_last:
        return ChannelsLast(unet.to(dtype=dtype).to(memory_format=torch.channels_last))
    return unet
