"""How the TorchScript export turns a `SeparatorArtifact` into one ScriptModule, as its architecture declares
(`zoo_core.architectures.Architecture.torchscript`).

``"script"``: ``torch.jit.script`` of the whole artifact. ``"trace"``: the network alone is traced with
``torch.jit.trace`` on the image it sees for a batch of two segments of the export's geometry, then the
artifact around it is scripted as usual. The STFT, framing, chunking and complement stay scripted code, so the
file has the same methods and metadata as a scripted one and the Python and C++ hosts run it alike; what a
trace cannot keep (Python control flow that depends on sizes) shows up in the exporter's self-check, which runs
other lengths and batch sizes than the traced one; a device a trace recorded as a constant is refused here.
"""

from __future__ import annotations

import re
import warnings

import torch
from torch import Tensor

from ..errors import ZooError, first_line
from ..model import SeparationModel
from .artifact import SeparatorArtifact

DEVICE_CONSTANT = re.compile(r'Device = prim::Constant\[value="([^"]+)"\]')
TRACE_HINT = 'an architecture whose network TorchScript cannot compile declares torchscript="trace"'


def to_torchscript(artifact: SeparatorArtifact, mode: str, name: str) -> torch.jit.ScriptModule:
    """``artifact`` as TorchScript; ``mode`` is the architecture's ``torchscript``. Failures are one line."""
    if mode == "trace":
        artifact.model.network = trace_network(artifact.model, artifact.segment_samples, name)
    try:
        return torch.jit.script(artifact)
    except Exception as exc:  # TorchScript's frontend raises several kinds, each with a multi-line source excerpt
        hint = "" if mode == "trace" else f" ({TRACE_HINT})"
        raise ZooError(f"{name} cannot be scripted: {first_line(exc).rstrip(': ')}{hint}", exit_code=1) from None


def network_input(model: SeparationModel, samples: int) -> Tensor:
    """The image ``model``'s network receives for a noise mixture of two ``samples``-long segments (batch 2, so
    no size is the 1 a trace might treat specially), taken from the network's own call."""
    seen: list[Tensor] = []
    handle = model.network.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    try:
        with torch.no_grad():
            model(0.1 * torch.randn(2, 2, samples, generator=torch.Generator().manual_seed(0)))
    finally:
        handle.remove()
    return seen[0]


def trace_network(model: SeparationModel, samples: int, name: str) -> torch.jit.ScriptModule:
    """``model``'s network traced at the segment geometry ``samples``."""
    example = network_input(model, samples)
    try:
        # the tracer warns about every Python int it records as a constant; the self-check is what decides
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            traced = torch.jit.trace(model.network, (example,), check_trace=False)
    except Exception as exc:  # the tracer raises several kinds
        raise ZooError(f"{name} cannot be traced: {first_line(exc)}", exit_code=1) from None
    pinned = DEVICE_CONSTANT.search(str(traced.inlined_graph))
    if pinned:  # the file is portable (one file for CPU and CUDA) or it is refused
        raise ZooError(
            f"{name}'s traced network creates a tensor on device {pinned.group(1)!r} (torch.zeros(..., device=...), "
            "or a layer that makes its own, e.g. an nn.GRU called without its initial state): make it from the "
            "input (x.new_zeros(...)) so the exported file runs on every device",
            exit_code=1,
        )
    return traced
