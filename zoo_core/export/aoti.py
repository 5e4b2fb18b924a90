"""AOTInductor export: the spectrogram core (`SeparationModel.core`), compiled ahead of time into a ``.pt2``.

Only real tensors cross the boundary: the host makes the image ``[batch, channels, bins, frames]`` from its own
STFT (`SeparationModel.to_image`: the lowest ``bins`` bins, complex-as-channels or magnitudes) and turns the
output ``[batch, stems, channels, bins, frames]`` back into audio (`SeparationModel.from_image`; examples/cpp_host
does both with libtorch ops). Complex ops stay outside because torch.export and Inductor handle them poorly.
Batch and frames are dynamic; frames must be a multiple of the model's ``time_factor``.

The package holds the exact inference rewrite of the core (`zoo_core.inference.optimize`: BatchNorm folded,
channels-last and the fused oneDNN convolutions on CPU), checked against the unmodified eager core. It is
compiled for one device, the CPU it was exported on or CUDA (``device="cuda"``), and says which in its metadata.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from ..errors import ZooError, first_line
from ..inference import optimize
from ..model import SeparationModel
from ..registry import ModelEntry
from ..files import atomic_path
from .deprecation import leafspec_deprecation_silenced
from .metadata import METADATA_FILE, build_metadata, chunk_geometry, core_contract
from .support import check_supported
from .torchscript import ExactReference, ExportResult, check_output, exact_float32, refuse_if_any_failed, resolve_device


class SpectrogramCore(nn.Module):
    """`SeparationModel.core` as a module of its own: image in, one image per stem out."""

    def __init__(self, model: SeparationModel):
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> Tensor:
        return self.model.core(image)


def optimized_core(model: SeparationModel, device: torch.device) -> SpectrogramCore:
    """What a package compiles: the core of `zoo_core.inference.optimize` applied to ``model`` on ``device``,
    portable (an architecture's own rewrite may call kernels that torch.export cannot trace, e.g. NNPACK's)."""
    return SpectrogramCore(optimize(copy.deepcopy(model).to(device), portable=True)).eval()


def mixture_image(model: SeparationModel, frames: int, batch: int, generator: torch.Generator) -> Tensor:
    """The image the core sees for a noise mixture (realistic value ranges for the checks), laid out as the hosts
    pass it: contiguous. torch.export keeps the example's strides, and a compiled package reads any input with
    them: a magnitude image straight from `SeparationModel.to_image` is frames-major, and a package traced on it
    returned garbage for the hosts' contiguous images (tfc-tdf-small-mag). The noise spans enough frames for a
    centred STFT's reflection (n_fft / 2 samples at each end), which one or two frames do not when the network
    takes any frame count (time_factor 1, the band-split RoFormers); the image is cut to ``frames``."""
    span = max(frames, model.n_fft // model.hop_length + 2)
    mixture = 0.1 * torch.randn(batch, 2, model.settings.samples(span), generator=generator)
    return model.to_image(mixture)[..., :frames].contiguous()


def host_settings(metadata: dict) -> dict[str, str]:
    """Flat string entries next to ``zoo.json`` so a C++ host reads them without a JSON parser."""
    stft = metadata["stft"]
    return {
        "sample_rate": str(metadata["sample_rate"]),
        "n_fft": str(stft["n_fft"]),
        "hop_length": str(stft["hop_length"]),
        "center": "1" if stft["center"] else "0",
        "time_factor": str(metadata["time_factor"]),
        "bins": str(metadata["stft"]["bins"]),
        "model_stems": str(len(metadata["model_stems"])),
        "representation": metadata["representation"],
        "segment": str(metadata["chunked"]["segment"]),
        "overlap": str(metadata["chunked"]["overlap"]),
        "stems": ",".join(metadata["stems"]),
        "torch_version": metadata["torch_version"],
        "device": metadata["device"],
    }


def default_check_frames(model: SeparationModel) -> list[int]:
    factor = model.time_factor
    return [factor, 3 * factor, model.settings.frames]


def _export_program(core: SpectrogramCore, example: Tensor, time_factor: int, name: str):
    batch = torch.export.Dim("batch", min=1, max=4096)
    blocks = torch.export.Dim("frame_blocks", min=1, max=1 << 20)
    try:
        # torch.export warns about its own internals; nothing a user can act on
        with torch.no_grad(), warnings.catch_warnings(record=True):
            return torch.export.export(core, (example,), dynamic_shapes={"image": {0: batch, 3: time_factor * blocks}})
    except Exception as exc:  # torch.export raises many kinds; the user needs the reason, not the trace
        raise ZooError(f"torch.export failed for {name}: {first_line(exc)}", exit_code=1) from None


def export_aoti(
    model: SeparationModel,
    entry: ModelEntry,
    path: Path,
    *,
    device: str = "cpu",
    segment: Optional[int] = None,
    overlap: Optional[int] = None,
    check_frames: Optional[Sequence[int]] = None,
) -> ExportResult:
    """Export, compile and package the optimised core of ``model`` for ``device`` (``cpu`` or ``cuda``); refuse
    to write when it disagrees with the unmodified eager core on CPU."""
    check_supported(entry, "aoti")
    if Path(path).suffix != ".pt2":
        raise ZooError(f"an AOTInductor package must be named *.pt2 (torch requires it), not {path}")
    target = resolve_device(device)
    segment, overlap = chunk_geometry(model, segment, overlap)
    model = copy.deepcopy(model).cpu().eval()
    reference = SpectrogramCore(model).eval()
    exact = ExactReference(reference)
    core = optimized_core(model, target)
    generator = torch.Generator().manual_seed(0)
    frames = list(check_frames or default_check_frames(model))
    with atomic_path(path) as temporary, exact_float32():
        # batch 2 and two frame blocks: export specialises sizes 0 and 1, which would pin those dimensions
        example = mixture_image(model, 2 * model.time_factor, 2, generator).to(target)
        program = _export_program(core, example, model.time_factor, entry.name)
        channels, bins = example.shape[1], example.shape[2]
        metadata = build_metadata(
            model,
            entry,
            "aoti",
            **core_contract(model, channels, bins),
            chunked={"segment": segment, "overlap": overlap, "blend": "zoo_core.chunking"},
            device=target.type,
        )
        try:
            with leafspec_deprecation_silenced():
                torch._inductor.aoti_compile_and_package(
                    program,
                    package_path=str(temporary),
                    inductor_configs={"aot_inductor.metadata": {METADATA_FILE: json.dumps(metadata), **host_settings(metadata)}},
                )
        except OSError:
            raise  # atomic_path says it cannot write
        except Exception as exc:  # the compiler and torch's file writer raise many kinds; one line is enough
            raise ZooError(f"AOTInductor could not compile or write {path}: {first_line(exc)}", exit_code=1) from None
        compiled = torch._inductor.aoti_load_package(str(temporary))
        checks = []
        with torch.no_grad():
            for index, count in enumerate(frames):
                batch = 2 if index == 1 else 1
                image = mixture_image(model, count, batch, generator)
                checks.append(check_output(f"core, {batch}x{channels}x{bins}x{count} on {target.type}",
                                           compiled(image.to(target)), reference(image), lambda: exact(image)))
        refuse_if_any_failed(checks, path, "compiled")
    return ExportResult(path, metadata, checks)
