"""Open an exported file safely: read its ``zoo.json`` first, refuse what this torch cannot run, then self-check.

TorchScript files and AOTInductor packages are zip archives. A TorchScript file keeps ``zoo.json`` under
``<archive>/extra/``; an AOTInductor package keeps it in the compiled model's metadata. Version checks happen
before torch parses the file, so an artifact from a newer torch gets a clear message instead of a
deserialisation error. An ONNX file is a protobuf whose ``metadata_props`` hold ``zoo.json``; it does not
depend on the torch version, only on ONNX Runtime understanding its opset.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import ZooError, first_line
from .deprecation import torchscript_deprecation_silenced
from .metadata import METADATA_FILE, check_torch_version, parse_metadata

SELF_CHECK_SAMPLES = 1000  # shorter than one STFT window of every registered model


@dataclass
class Inspection:
    path: Path
    format: str
    metadata: dict[str, Any]
    self_check: str


def artifact_format(path: Path) -> str:
    """``torchscript``, ``aoti`` or ``onnx`` (named by its ``.onnx`` suffix: a protobuf has no signature)."""
    path = Path(path)
    if not path.is_file():
        raise ZooError(f"{path}: no such file")
    if path.suffix.lower() == ".onnx":
        return "onnx"
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        raise ZooError(f"{path} is not an exported model (not a TorchScript, AOTInductor or ONNX file, or corrupted)") from None
    if any("/aotinductor/" in name for name in names):
        return "aoti"
    if any(name.endswith("/constants.pkl") or name.endswith("/data.pkl") for name in names):
        return "torchscript"
    raise ZooError(f"{path} is a zip archive but not an exported model")


def _torchscript_metadata(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.endswith(f"/extra/{METADATA_FILE}")]
        raw = archive.read(names[0]) if names else b""
    return parse_metadata(raw, str(path))


def load_torchscript(path: Path, device: str = "cpu") -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """The scripted module and its metadata, after the version and device checks."""
    try:
        metadata = _torchscript_metadata(path)
    except (zipfile.BadZipFile, OSError, KeyError):
        raise ZooError(f"{path}: cannot read its {METADATA_FILE} (corrupted artifact?)") from None
    check_torch_version(metadata, str(path))
    frozen_for = metadata.get("frozen_for")
    if frozen_for == "cuda" and not torch.cuda.is_available():
        raise ZooError(f"{path} is frozen for CUDA, which is not available here; export an unfrozen file for CPU")
    try:
        with torchscript_deprecation_silenced():
            module = torch.jit.load(str(path), map_location=frozen_for or device)
    except Exception as exc:  # torch reports a damaged archive with RuntimeError, ValueError, ...
        first = first_line(exc)
        raise ZooError(f"{path}: cannot load the TorchScript module (corrupted artifact?): {first}") from None
    return module.eval(), metadata


def load_aoti(path: Path) -> tuple[Any, dict[str, Any]]:
    try:
        loader = torch._inductor.aoti_load_package(str(path))
    except Exception as exc:  # a damaged package fails inside the C++ loader
        first = first_line(exc)
        raise ZooError(f"{path}: cannot load the AOTInductor package (corrupted or built for another machine?): {first}") from None
    metadata = parse_metadata(loader.get_metadata().get(METADATA_FILE, ""), str(path))
    check_torch_version(metadata, str(path))
    return loader, metadata


def load_onnx(path: Path) -> tuple[Any, dict[str, Any]]:
    """An ONNX Runtime session of the file and its metadata (ONNX files do not depend on the torch version)."""
    from .onnx_runtime import custom_metadata, open_session

    session = open_session(path, str(path))
    return session, parse_metadata(custom_metadata(session).get(METADATA_FILE, ""), str(path))


def _shape_error(expected: list[int], actual: torch.Tensor) -> str:
    return f"FAILED: expected output shape {expected}, got {list(actual.shape)}"


def self_check_torchscript(module: torch.jit.ScriptModule, metadata: dict[str, Any]) -> str:
    stems = list(module.stems())
    if module.sample_rate() != metadata["sample_rate"] or stems != metadata["stems"]:
        return "FAILED: the module's sample_rate()/stems() disagree with its metadata"
    mixture = 0.1 * torch.randn(1, 2, SELF_CHECK_SAMPLES, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = module(mixture.to(metadata.get("frozen_for") or "cpu")).cpu()
    expected = [1, len(stems), 2, SELF_CHECK_SAMPLES]
    if list(out.shape) != expected:
        return _shape_error(expected, out)
    if not torch.isfinite(out).all():
        return "FAILED: non-finite output"
    return f"ok (1x2x{SELF_CHECK_SAMPLES} samples -> {'x'.join(map(str, expected))})"


def self_check_core(core: Any, metadata: dict[str, Any]) -> str:
    """A core-only file (AOTInductor, ONNX): one image of two frame blocks through ``core``."""
    _, channels, bins, _ = metadata["input"]["shape"]
    frames = 2 * metadata["input"]["frames_multiple_of"]
    image = torch.randn(1, channels, bins, frames, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = core(image)
    expected = [1, len(metadata["model_stems"]), channels, bins, frames]
    if list(out.shape) != expected:
        return _shape_error(expected, out)
    if not torch.isfinite(out).all():
        return "FAILED: non-finite output"
    return f"ok (1x{channels}x{bins}x{frames} image -> {'x'.join(map(str, expected))})"


def inspect_artifact(path: Path) -> Inspection:
    fmt = artifact_format(path)
    if fmt == "aoti":
        loader, metadata = load_aoti(path)
        return Inspection(path, fmt, metadata, self_check_core(loader, metadata))
    if fmt == "onnx":
        from .onnx_runtime import OnnxCore

        session, metadata = load_onnx(path)
        return Inspection(path, fmt, metadata, self_check_core(OnnxCore(session), metadata))
    module, metadata = load_torchscript(path)
    return Inspection(path, fmt, metadata, self_check_torchscript(module, metadata))


_FORMAT_NAMES = {"torchscript": "TorchScript", "aoti": "AOTInductor package", "onnx": "ONNX"}
_REPRESENTATIONS = {"cac": "complex-as-channels", "magnitude": "magnitude"}


def summary_lines(inspection: Inspection) -> list[str]:
    """What ``zoo inspect`` prints first: the file's model, format, stems, framing, weights and self-check, one
    labelled line each (the full ``zoo.json`` is what ``--json`` prints)."""
    meta = inspection.metadata
    stft = meta.get("stft", {})
    rate = meta.get("sample_rate", 44100)
    kind = _FORMAT_NAMES.get(inspection.format, inspection.format)
    if inspection.format == "torchscript":
        kind += f", frozen for {meta['frozen_for']}" if meta.get("frozen_for") else ", portable (CPU and CUDA)"
    elif inspection.format == "aoti":
        kind += f", compiled for {meta.get('device', '?')}"
    elif "onnx" in meta:
        kind += f", opset {meta['onnx'].get('opset', '?')}"
    if inspection.format != "torchscript":
        kind += "; the spectrogram core only (the host does the STFT)"
    stems = ", ".join(meta.get("stems", []))
    if meta.get("stems") != meta.get("model_stems"):
        stems += f" (the network gives {', '.join(meta.get('model_stems', []))})"
    framing = (f"n_fft {stft.get('n_fft')}, hop {stft.get('hop_length')}, "
               f"{'centred' if stft.get('center') else 'not centred'}, {stft.get('bins')} bins, "
               f"{_REPRESENTATIONS.get(meta.get('representation'), meta.get('representation'))} {meta.get('estimation')}")
    chunked = meta.get("chunked") or {}
    if "segment" in chunked:
        framing += (f"; segment {chunked['segment']} samples ({chunked['segment'] / rate:.2f} s), "
                    f"overlap {chunked.get('overlap')}")
    weights = meta.get("weights")
    described = (f"{meta.get('model')}:{weights.get('variant')}, sha256 {str(weights.get('sha256'))[:12]}"
                 if weights else "initialised parameters (no trained weights)")
    rows = [
        ("model", f"{meta.get('model')} at {rate} Hz"),
        ("format", kind),
        ("stems", stems),
        ("framing", framing),
        ("weights", described),
        ("made with", f"torch {meta.get('torch_version')}, svs-zoo {meta.get('svs_zoo_version')}"),
        ("self-check", inspection.self_check),
    ]
    return [str(inspection.path)] + [f"  {label:<11} {value}" for label, value in rows]
