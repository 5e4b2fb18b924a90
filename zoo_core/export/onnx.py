"""ONNX export: the spectrogram core (`SeparationModel.core`) as an ONNX graph, its framing contract inside.

Like the AOTInductor package, the file holds only the core: image ``[batch, channels, bins, frames]`` in, one
image per model stem ``[batch, stems, channels, bins, frames]`` out; batch and frames are dynamic (frames a
multiple of ``time_factor``). A host does the STFT and its inverse (`zoo_core.hosts.spectral`, or any runtime
that follows the contract). The model's ``metadata_props`` hold the same ``zoo.json`` as the other formats plus
flat string keys (n_fft, hop_length, center, bins, representation, ...) that need no JSON parser.

The graph comes from torch.onnx's TorchScript-based exporter (opset 17): on torch 2.13 it exports every paper
architecture, the recurrent ones with a dynamic frame count too, where the torch.export-based exporter fixes a
GRU's sequence length (as `zoo_core.export.aoti` explains). The graph is `optimize()`'s exact rewrite in
standard operations, which ONNX Runtime runs faster than the unmodified one. Before anything is written, ONNX
Runtime runs the file on three frame counts and two batch sizes, and a file that disagrees with the unmodified
eager core is refused.
"""

from __future__ import annotations

import copy
import io
import json
import warnings
from pathlib import Path
from typing import Optional, Sequence

import torch
from torch import nn

from ..errors import ZooError, first_line
from ..files import atomic_path
from ..inference import optimize
from ..model import SeparationModel
from ..native import native_stderr_discarded
from ..registry import ModelEntry
from .aoti import SpectrogramCore, default_check_frames, host_settings, mixture_image
from .metadata import METADATA_FILE, chunk_geometry, core_metadata
from .onnx_runtime import INSTALL_HINT, OnnxCore, open_session
from .support import check_supported
from .torchscript import ExactReference, ExportResult, check_output, refuse_if_any_failed

OPSET = 17  # the first opset with STFT/DFT and LayerNormalization; ONNX Runtime 1.14 and newer run it
INPUT_NAME = "image"
OUTPUT_NAME = "estimate"


def check_onnx_available() -> None:
    """Refuse before loading weights when the optional packages are missing."""
    missing = []
    for module in ("onnx", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise ZooError(f"--format onnx needs {' and '.join(missing)}, which {verb} not installed: {INSTALL_HINT}", exit_code=1)


def with_affine_batchnorms(module: nn.Module) -> nn.Module:
    """Give every BatchNorm without scale and shift an explicit scale of 1 and shift of 0 (the same function).

    torch.onnx's BatchNorm needs the channel count to make those itself, and loses it after a reshape whose
    sizes it reads from the input (a per-frame frequency sampling layer did, before `optimize` replaced it by a
    2-D convolution); explicit parameters carry it whatever the layers before.
    """
    for norm in module.modules():
        if isinstance(norm, nn.modules.batchnorm._BatchNorm) and not norm.affine:
            norm.weight = nn.Parameter(torch.ones(norm.num_features), requires_grad=False)
            norm.bias = nn.Parameter(torch.zeros(norm.num_features), requires_grad=False)
            norm.affine = True
    return module


def _export_graph(core: SpectrogramCore, example: torch.Tensor, name: str) -> bytes:
    buffer = io.BytesIO()
    try:
        # the TorchScript-based exporter warns that it is deprecated, and about tracing internals: nothing a
        # user can act on (the choice is explained in the module docstring)
        with torch.no_grad(), warnings.catch_warnings(record=True), native_stderr_discarded():
            torch.onnx.export(
                core,
                (example,),
                buffer,
                dynamo=False,
                opset_version=OPSET,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch", 3: "frames"}, OUTPUT_NAME: {0: "batch", 4: "frames"}},
                do_constant_folding=True,
            )
    except Exception as exc:  # torch.onnx raises many kinds (unsupported operator, symbolic errors, ...)
        raise ZooError(f"{name} cannot be exported to ONNX: torch.onnx failed: {first_line(exc)}", exit_code=1) from None
    return buffer.getvalue()


def _with_metadata(graph: bytes, metadata: dict) -> bytes:
    """The graph with ``zoo.json`` and the flat host settings in its ``metadata_props``, and its output declared
    with the static sizes of the contract (the exporter names them after a Reshape: ``Reshapeestimate_dim_1``)."""
    import onnx

    proto = onnx.load_from_string(graph)
    output_dims = proto.graph.output[0].type.tensor_type.shape.dim
    for index, size in enumerate(metadata["output"]["shape"]):
        if isinstance(size, int):
            output_dims[index].Clear()
            output_dims[index].dim_value = size
    entries = {METADATA_FILE: json.dumps(metadata), **host_settings(metadata)}
    del proto.metadata_props[:]
    for key, value in entries.items():
        proto.metadata_props.add(key=key, value=value)
    proto.doc_string = f"svs-zoo {metadata['model']}: spectrogram core; framing contract in metadata_props ({METADATA_FILE})"
    return proto.SerializeToString()


def export_onnx(
    model: SeparationModel,
    entry: ModelEntry,
    path: Path,
    *,
    segment: Optional[int] = None,
    overlap: Optional[int] = None,
    check_frames: Optional[Sequence[int]] = None,
) -> ExportResult:
    """Export the core of ``model`` to ``path``; refuse to write when ONNX Runtime disagrees with eager."""
    check_supported(entry, "onnx")
    check_onnx_available()
    if Path(path).suffix.lower() != ".onnx":  # an ONNX protobuf has no signature: readers tell it by its name
        raise ZooError(f"an ONNX file must be named *.onnx, not {path}")
    segment, overlap = chunk_geometry(model, segment, overlap)
    model = copy.deepcopy(model).cpu().eval()
    reference = SpectrogramCore(model).eval()  # the eager core every check compares with
    exact = ExactReference(reference)
    # the exact inference rewrite in standard operations (no oneDNN fusion, NCHW): BatchNorm folded, per-frame
    # convolutions as 1 x k 2-D ones; ONNX Runtime runs it about 1.5x faster than the unmodified graph
    portable = optimize(model, torch.float32, target="onnx")
    exported = SpectrogramCore(with_affine_batchnorms(portable)).eval()
    generator = torch.Generator().manual_seed(0)
    frames = list(check_frames or default_check_frames(model))
    with atomic_path(path) as temporary:
        # batch 2 and two frame blocks, so no size is a 0/1 special case while tracing
        example = mixture_image(model, 2 * model.time_factor, 2, generator)
        metadata = core_metadata(model, entry, "onnx", example, segment, overlap, INPUT_NAME, OUTPUT_NAME,
                                 onnx={"opset": OPSET, "exporter": "torch.onnx (TorchScript-based)"}, device="cpu")
        data = _with_metadata(_export_graph(exported, example, entry.name), metadata)
        compiled = OnnxCore(open_session(data, f"the ONNX graph of {entry.name}"))
        checks = []
        with torch.no_grad():
            for index, count in enumerate(frames):
                batch = 2 if index == 1 else 1
                image = mixture_image(model, count, batch, generator)
                checks.append(check_output(f"core, {'x'.join(map(str, image.shape))}", compiled(image), reference(image),
                                           lambda: exact(image)))
        refuse_if_any_failed(checks, path, "ONNX Runtime")
        temporary.write_bytes(data)
    return ExportResult(path, metadata, checks)
