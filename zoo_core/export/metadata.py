"""``zoo.json``: what an exported file says about itself, and the checks a loader makes against it."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Mapping, Optional

import torch

from ..errors import ZooError
from ..stems import output_stems

if TYPE_CHECKING:  # a loader reads metadata without importing the model code
    from ..model import SeparationModel
    from ..registry import ModelEntry

METADATA_FILE = "zoo.json"
SCHEMA = 1
# the fields of model.provenance that describe the weights (the model name is already in the metadata)
WEIGHTS_FIELDS = ("variant", "sha256", "source_url", "source_git_sha1", "format", "layout")


def chunk_geometry(model: SeparationModel, segment: Optional[int], overlap: Optional[int]) -> tuple[int, int]:
    """(segment, overlap) in samples; what is not given defaults to `zoo separate`'s hop-aligned choice."""
    from ..separation import SeparationSettings

    default_segment, default_overlap = SeparationSettings().geometry(model)
    segment = segment or default_segment
    overlap = default_overlap if overlap is None else overlap
    if not 0 <= overlap < segment:
        raise ZooError(f"need 0 <= overlap < segment, got segment {segment}, overlap {overlap}")
    return segment, overlap


def weights_metadata(model: SeparationModel) -> Optional[dict[str, Any]]:
    if model.provenance is None:
        return None
    info = model.provenance.as_dict()
    return {key: info[key] for key in WEIGHTS_FIELDS}


def build_metadata(model: SeparationModel, entry: ModelEntry, fmt: str, **extra: Any) -> dict[str, Any]:
    from .. import __version__

    settings = model.settings
    return {
        "schema": SCHEMA,
        "format": fmt,
        "model": entry.name,
        "entry": entry.as_json(),
        "weights": weights_metadata(model),
        "sample_rate": model.sample_rate,
        "audio_channels": 2,
        "stft": {
            "n_fft": settings.n_fft,
            "hop_length": settings.hop_length,
            "center": settings.center,
            "frames": settings.frames,
            "bins": settings.kept_bins,
            "window": "hann (periodic)",
        },
        "model_stems": list(model.stems),
        "stems": output_stems(model.stems),
        "representation": entry.representation,
        "estimation": entry.estimation,
        "time_factor": model.time_factor,
        "torch_version": str(torch.__version__),
        "svs_zoo_version": __version__,
        **extra,
    }


def core_metadata(model: SeparationModel, entry: ModelEntry, fmt: str, example: torch.Tensor, segment: int,
                  overlap: int, input_name: Optional[str] = None, output_name: Optional[str] = None,
                  **extra: Any) -> dict[str, Any]:
    """The metadata of a core-only file (AOTInductor, ONNX) whose core takes images like ``example``: with the
    chunk geometry and the contract of what a host does around the core (`core_contract`)."""
    channels, bins = example.shape[1], example.shape[2]
    return build_metadata(model, entry, fmt, **core_contract(model, channels, bins, input_name, output_name),
                          chunked={"segment": segment, "overlap": overlap, "blend": "zoo_core.chunking"}, **extra)


def core_contract(model: SeparationModel, channels: int, bins: int, input_name: Optional[str] = None,
                  output_name: Optional[str] = None) -> dict[str, Any]:
    """The ``input``, ``output`` and ``host`` entries of a core-only file (AOTInductor, ONNX): what a host does
    around the spectrogram core, the same contract for every such format (`zoo_core.hosts.spectral` follows it)."""
    names = lambda name: {"name": name} if name else {}  # noqa: E731
    return {
        "input": {**names(input_name), "shape": ["batch", channels, bins, "frames"], "dtype": "float32",
                  "frames_multiple_of": model.time_factor},
        "output": {
            **names(output_name),
            "shape": ["batch", len(model.stems), channels, bins, "frames"],
            "meaning": "one image per model stem in the same framing; accompaniment = mixture minus vocals, in the host",
        },
        "host": {
            "padding": "as SeparationModel.padding: zero-pad so frames are a multiple of time_factor",
            "stft": "periodic Hann window, reflect padding when center is true; keep the lowest bins",
            "image": "cac: channels [Re L, Im L, Re R, Im R]; magnitude: |X| per channel, phase from the mixture",
            "istft": "zero-fill the bins above; overlap-add divided by the summed squared window where it exceeds "
                     "float32 tiny",
        },
    }


def release(version: str) -> tuple[int, ...]:
    """``"2.13.0+cpu"`` → ``(2, 13, 0)``: local tags and pre-release suffixes do not change the file format."""
    match = re.match(r"\d+(\.\d+)*", version)
    if match is None:
        raise ZooError(f"unreadable torch version {version!r} in the artifact's metadata")
    return tuple(int(part) for part in match.group(0).split("."))


def check_torch_version(metadata: Mapping[str, Any], path: str) -> None:
    """A file written by a newer torch may use operators or a file version this torch cannot read."""
    exported = str(metadata.get("torch_version", ""))
    if release(exported) > release(str(torch.__version__)):
        raise ZooError(
            f"{path} was exported with torch {exported}, newer than this torch {torch.__version__}; "
            "upgrade torch or export it again with this one"
        )


def parse_metadata(raw: bytes | str, path: str) -> dict[str, Any]:
    if not raw:
        raise ZooError(f"{path} is not an svs-zoo artifact (no {METADATA_FILE} inside)")
    try:
        metadata = json.loads(raw)
    except ValueError:
        raise ZooError(f"{path}: its {METADATA_FILE} is not valid JSON (corrupted artifact?)") from None
    if not isinstance(metadata, dict) or "torch_version" not in metadata:
        raise ZooError(f"{path}: its {METADATA_FILE} is not svs-zoo metadata")
    return metadata
