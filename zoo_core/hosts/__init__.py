"""Separating with an exported file: `open_artifact(path)` gives the engine's model protocol for any format.

`zoo_core.separation` needs of a model only ``model(batch [B, 2, L]) -> [B, model_stems, 2, L]``,
``sample_rate``, ``hop_length``, ``stems`` and ``training_segment()``. Each format gets a small adapter that
presents exactly that, from the file's ``zoo.json`` alone, so `separate`, `separate_file` and ``zoo separate
--artifact`` run unchanged on it, with the same streaming overlap-add as the eager model:

- TorchScript (``.ts.pt``): the module is waveform in, stems out already; its accompaniment is dropped, since
  the engine forms mixture − vocals itself as for the eager model.
- ONNX (``.onnx``) and AOTInductor (``.pt2``) hold only the spectrogram core; `zoo_core.hosts.spectral` does
  the waveform side, written once for both.

Nothing here imports svs-zoo's model code, registry or plugins (a test checks ``sys.modules``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from ..chunking import DEFAULT_OVERLAP
from ..provenance import WeightsProvenance
from ..errors import ZooError
from .spectral import FramingContract, SpectralHost


class ArtifactModel(nn.Module):
    """What the separation engine sees of an exported file; ``metadata`` is its ``zoo.json``."""

    def __init__(self, separator: nn.Module, metadata: Mapping[str, Any], path: Path, contract: FramingContract):
        super().__init__()
        self.separator = separator
        self.metadata = dict(metadata)
        self.path = path
        self.format = str(metadata["format"])
        self.contract = contract
        self.stems = list(contract.model_stems)
        self.sample_rate = contract.sample_rate
        self.hop_length = contract.hop_length
        self.default_segment = int(metadata.get("chunked", {}).get("segment") or contract.training_segment())
        # the model's default overlap fraction (its registry entry's), so that --segment cuts as with -m MODEL
        self.default_overlap = float((metadata.get("entry") or {}).get("overlap", DEFAULT_OVERLAP))
        # what names the output folder (`zoo_core.separation.model_folder`): <model>_<variant> of the weights
        weights = metadata.get("weights") or {}
        self.entry_name = str(metadata["model"])
        self.provenance = WeightsProvenance(self.entry_name, str(weights.get("variant") or "")) if weights else None

    def forward(self, mixture: Tensor) -> Tensor:
        return self.separator(mixture)

    def training_segment(self) -> int:
        """The default segment: the one stored in the file (``zoo export --segment``; by default the model's
        training window, as `zoo separate -m` uses)."""
        return self.default_segment


class OnDevice(nn.Module):
    """Runs ``separator`` on ``device``: inputs go there and come back (the engine keeps audio on the CPU; a
    frozen TorchScript module or a compiled package has no parameters that would say where it runs)."""

    def __init__(self, separator: Any, device: torch.device, model_stems: int | None = None):
        super().__init__()
        self.separator = separator
        self.device = device
        self.model_stems = model_stems  # keep this many leading stems (a TorchScript file also gives accompaniment)

    def forward(self, mixture: Tensor) -> Tensor:
        out = self.separator(mixture.to(self.device))
        if self.model_stems is not None:
            out = out[:, : self.model_stems]
        return out.to(mixture.device)


def open_artifact(path: str | Path, device: str = "cpu") -> ArtifactModel:
    """The exported file at ``path`` as a model for `zoo_core.separation`, after the loaders' safety checks.
    ``device="auto"`` is where the file runs: the CPU for ONNX, the device an AOTInductor package was compiled
    (or a TorchScript file frozen) for, else CUDA when present."""
    from ..devices import AUTO, parse_device, resolve_device
    from ..export.inspect import artifact_format, load_aoti, load_onnx, load_torchscript

    path = Path(path)
    requested = parse_device(device)
    fmt = artifact_format(path)
    if fmt == "onnx" and requested not in (AUTO, "cpu"):
        raise ZooError(f"{path}: ONNX files run on the CPU here; use a TorchScript file for --device {device}")
    explicit = None if requested == AUTO else resolve_device(requested)  # a missing GPU before loading anything
    if fmt == "torchscript":
        target = explicit or resolve_device(AUTO)
        module, metadata = load_torchscript(path, str(target))
        contract = FramingContract.from_metadata(metadata, str(path))
        placed = torch.device(metadata.get("frozen_for") or target)
        separator: nn.Module = OnDevice(module, placed, len(contract.model_stems))
    elif fmt == "aoti":
        core, metadata = load_aoti(path)
        compiled_for = str(metadata.get("device") or "cpu")  # packages before the device entry were for the CPU
        target = explicit or resolve_device(compiled_for)
        if torch.device(compiled_for).type != target.type:
            raise ZooError(f"{path} is compiled for {compiled_for}; separate with --device {compiled_for}, or export "
                           f"it again with zoo export --format aoti --device {target.type}")
        contract = FramingContract.from_metadata(metadata, str(path))
        separator = OnDevice(SpectralHost(core, contract).to(target), target)
    else:
        from ..export.onnx_runtime import OnnxCore

        session, metadata = load_onnx(path)
        contract = FramingContract.from_metadata(metadata, str(path))
        separator = SpectralHost(OnnxCore(session), contract)
    return ArtifactModel(separator, metadata, path, contract).eval()


__all__ = ["ArtifactModel", "FramingContract", "SpectralHost", "open_artifact"]
