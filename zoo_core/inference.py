"""`optimize(model)`: an inference-only copy of a `SeparationModel`, with the same ``forward`` contract.

The copy is in eval mode with no gradients, its network rewritten by its architecture's own exact rewrite (the
``optimize`` hook of `zoo_core.architectures.Architecture`; a family without one runs as built) and, with
``dtype=torch.bfloat16``, run in bfloat16 while the STFT, iSTFT and blending stay float32: about half the memory
traffic, and native BF16 dot products on CPUs that have them (AVX-512 BF16, AMX). ``target`` says where the copy
goes: ``"process"`` (this process: any kernel) or an export format (``"torchscript"``, ``"aoti"``, ``"onnx"``),
whose hosts run only what the format carries. Typical use::

    model = zoo_core.load("NAME")
    fast = optimize(model)                    # float32, exact within float rounding
    fast_bf16 = optimize(model, torch.bfloat16)  # opt-in, slightly different numbers
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from .errors import ZooError
from .model import SeparationModel

DTYPES = (torch.float32, torch.bfloat16)
TARGETS = ("process", "torchscript", "aoti", "onnx")


class Precision(nn.Module):
    """Runs the wrapped network in ``dtype``; the image comes back in the caller's dtype."""

    def __init__(self, network: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.network = network
        self.dtype = dtype

    def forward(self, image: Tensor) -> Tensor:
        return self.network(image.to(self.dtype)).to(image.dtype)


def optimize(
    model: SeparationModel, dtype: torch.dtype = torch.float32, target: str = "process", **options
) -> SeparationModel:
    """The inference copy (see the module docstring); ``options`` go to the architecture's rewrite (e.g. a
    benchmark's layout choice). The original model is left untouched."""
    if not isinstance(model, SeparationModel):
        raise ZooError(f"optimize() takes a SeparationModel, got {type(model).__name__}")
    if dtype not in DTYPES:
        raise ZooError(f"unsupported dtype {dtype}; choose torch.float32 or torch.bfloat16")
    if target not in TARGETS:
        raise ZooError(f"unknown optimisation target {target!r} (choose {', '.join(TARGETS)})")
    fast = copy.deepcopy(model).eval()
    rewrite = model.architecture.optimize if model.architecture is not None else None
    network = fast.network
    if rewrite is not None:
        network = rewrite(network, dtype, target, **options)
    elif options:
        raise ZooError(f"{model.entry_name or 'this model'}'s architecture takes no options: {sorted(options)}")
    fast.network = Precision(network.to(dtype=dtype), dtype)
    for parameter in fast.parameters():
        parameter.requires_grad_(False)
    return fast
