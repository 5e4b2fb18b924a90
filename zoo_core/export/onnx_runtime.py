"""Running an exported ONNX core with ONNX Runtime: one session recipe for the exporter's checks, `zoo inspect`
and `zoo separate --artifact`, so what was checked is what runs.

Only ``onnxruntime`` is needed here (not ``onnx``, not torch.onnx); both come with ``pip install 'svs-zoo[onnx]'``.
"""

from __future__ import annotations

import os
from typing import Any, Union

import torch
from torch import Tensor

from ..errors import ZooError, first_line

INSTALL_HINT = "pip install 'svs-zoo[onnx]'"


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ZooError(f"ONNX files need ONNX Runtime, which is not installed: {INSTALL_HINT}", exit_code=1) from None
    return onnxruntime


def session_options(onnxruntime, threads: int):
    """All graph optimisations, and torch's thread count so both runtimes share the cores alike."""
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1  # the graph is one chain: parallel branches would only contend for cores
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only: its warnings name graph internals a user cannot act on
    return options


def open_session(model: Union[str, os.PathLike, bytes], where: str, threads: int = 0):
    """An ONNX Runtime CPU session for a file (or its bytes); a file it cannot read is a one-line error."""
    onnxruntime = import_onnxruntime()
    source = model if isinstance(model, bytes) else str(model)
    try:
        return onnxruntime.InferenceSession(
            source, session_options(onnxruntime, threads or torch.get_num_threads()), providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own exception types for a damaged or foreign file
        raise ZooError(f"{where}: ONNX Runtime cannot load it (corrupted, or an unsupported opset?): {first_line(exc)}") from None


def custom_metadata(session) -> dict[str, str]:
    """The model's ``metadata_props`` as ONNX Runtime reports them."""
    return dict(session.get_modelmeta().custom_metadata_map)


class OnnxCore:
    """A session as a function on torch tensors: image ``[B, C, bins, T]`` in, ``[B, stems, C, bins, T]`` out."""

    def __init__(self, session: Any):
        self.session = session
        self.input_name = session.get_inputs()[0].name

    def __call__(self, image: Tensor) -> Tensor:
        array = image.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {self.input_name: array})[0])
