"""TorchScript export: script the `SeparatorArtifact` (its network traced instead where the architecture says so,
`zoo_core.export.tracing`), prove it matches eager, write it with its ``zoo.json``.

The default file is portable (no frozen constants, tensors follow the input's device): one file runs on CPU
and on CUDA. ``freeze=True`` writes a file frozen for one device instead, named ``NAME.frozen-<device>...``.
"""

from __future__ import annotations

import contextlib
import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import torch
from torch import Tensor, nn

from ..errors import ZooError, first_line
from ..inference import optimize
from ..model import SeparationModel
from ..registry import ModelEntry, architecture_for
from .artifact import SeparatorArtifact
from ..files import atomic_path
from .deprecation import torchscript_deprecation_silenced
from .metadata import METADATA_FILE, build_metadata, chunk_geometry
from .support import check_supported
from .tracing import to_torchscript

TOLERANCE = 1e-5  # relative to the largest eager output value
EXPORTED_METHODS = ("separate_chunked", "sample_rate", "audio_channels", "stems", "default_segment", "default_overlap")


@dataclass
class Check:
    description: str
    relative_error: float
    tolerance: float = TOLERANCE

    @property
    def passed(self) -> bool:
        return self.relative_error <= self.tolerance


class ExactReference:
    """Runs the CPU ``module`` in float64, for a check that misses `TOLERANCE` only: converted for the call and
    back (float32 -> float64 -> float32 is exact), so a large model is not held twice."""

    def __init__(self, module: nn.Module):
        self.module = module

    def __call__(self, *inputs: Tensor, method: str = "forward", **options: Any) -> Tensor:
        self.module.double()
        try:
            with torch.no_grad():
                return getattr(self.module, method)(*(x.cpu().double() for x in inputs), **options)
        finally:
            self.module.float()


def check_output(description: str, actual: Tensor, expected: Tensor, exact: Callable[[], Tensor]) -> Check:
    """``actual`` (the exported file's output) against ``expected`` (eager float32): within `TOLERANCE` of its
    peak, or, where eager float32 is itself farther than that from ``exact()`` (the same computation in float64:
    a deep network with initialised parameters, e.g. MDX23C's, 7.6e-5), within three times eager's own error.
    Two float32 computations of one function may differ by the sum of their rounding errors; a real mistake in
    an export (a wrong operator, a lost layer) is far beyond either."""
    error = relative_error(actual, expected)
    if error <= TOLERANCE:
        return Check(description, error)
    rounding = relative_error(expected.double(), exact())
    return Check(description, error, max(TOLERANCE, 3 * rounding))


def refuse_if_any_failed(checks: Sequence[Check], path: Path, what: str) -> None:
    """Raise (nothing gets written) when any check exceeds its tolerance; name the worst one."""
    failed = [c for c in checks if not c.passed]
    if failed:
        worst = max(failed, key=lambda c: c.relative_error / c.tolerance)
        raise ZooError(
            f"refusing to write {path}: {what} output differs from eager ({worst.description}: relative error "
            f"{worst.relative_error:.2e} > {worst.tolerance:.1e})",
            exit_code=1,
        )


@dataclass
class ExportResult:
    path: Path
    metadata: dict[str, Any]
    checks: list[Check] = field(default_factory=list)


def resolve_device(name: str) -> torch.device:
    """An export's device (`zoo_core.devices`: auto, cpu, cuda or cuda:N)."""
    from ..devices import resolve_device as resolve

    return resolve(name, action="export with --device cpu")


def frozen_path(path: Path, device: torch.device) -> Path:
    """``vocals.ts.pt`` → ``vocals.frozen-cpu.ts.pt``: a frozen file only runs on the device it was frozen for."""
    stem, dot, suffixes = path.name.partition(".")
    return path.with_name(f"{stem}.frozen-{device.type}{dot}{suffixes}")


def default_check_lengths(model: SeparationModel) -> list[int]:
    """Shorter than one STFT window, not a multiple of the hop, and longer than one training window."""
    return [model.n_fft // 2 + 1, 3 * model.hop_length + 7, model.settings.window_samples + model.hop_length // 2 + 1]


@contextlib.contextmanager
def exact_float32() -> Iterator[None]:
    """CUDA float32 without TensorFloat-32 (cuDNN convolutions use TF32 by default on Ampere and newer, about
    1e-3 relative): the checks compare float32 with float32. Restores the caller's settings."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def relative_error(actual: Tensor, expected: Tensor) -> float:
    if actual.shape != expected.shape:
        return float("inf")
    scale = max(expected.abs().max().item(), 1e-12)
    return (actual.cpu() - expected).abs().max().item() / scale


def compare(
    artifact: SeparatorArtifact, scripted: torch.jit.ScriptModule, device: torch.device, lengths: Sequence[int]
) -> list[Check]:
    """Eager on CPU is the reference; the scripted module runs on ``device``."""
    generator = torch.Generator().manual_seed(0)
    exact = ExactReference(artifact)
    checks = []
    with torch.no_grad(), exact_float32():
        for index, length in enumerate(lengths):
            batch = 2 if index == len(lengths) - 1 else 1
            mixture = 0.1 * torch.randn(batch, 2, length, generator=generator)
            checks.append(check_output(f"forward, {batch}x2x{length} on {device.type}", scripted(mixture.to(device)),
                                       artifact(mixture), lambda: exact(mixture)))
        longest = max(lengths)
        segment = max(2 * longest // 3, 2)  # two segments and a cross-fade: the blending without the cost
        overlap = segment // 4
        mixture = 0.1 * torch.randn(1, 2, longest, generator=generator)
        expected = artifact.separate_chunked(mixture, segment, overlap, 2)
        actual = scripted.separate_chunked(mixture.to(device), segment, overlap, 2)
        checks.append(check_output(
            f"separate_chunked, 1x2x{longest}, segment {segment}, overlap {overlap}", actual, expected,
            lambda: exact(mixture, method="separate_chunked", segment=segment, overlap=overlap, batch_size=2),
        ))
    return checks


def export_torchscript(
    model: SeparationModel,
    entry: ModelEntry,
    path: Path,
    *,
    device: str = "cpu",
    freeze: bool = False,
    segment: Optional[int] = None,
    overlap: Optional[int] = None,
    check_lengths: Optional[Sequence[int]] = None,
) -> ExportResult:
    """Script ``model`` (built from ``entry``, weights already loaded; its network traced where its architecture
    declares ``torchscript = "trace"``) and write it to ``path`` atomically.

    Refuses to write (ZooError) when the scripted module disagrees with eager beyond `TOLERANCE`.
    """
    check_supported(entry, "torchscript")
    mode = architecture_for(entry).torchscript
    target = resolve_device(device)
    segment, overlap = chunk_geometry(model, segment, overlap)
    if freeze:
        path = frozen_path(path, target)
    lengths = list(check_lengths or default_check_lengths(model))

    with atomic_path(path) as temporary:
        # the file holds the exact inference rewrite of the model (zoo_core.inference.optimize: BatchNorm folded,
        # fused ReLU, channels-last); every check compares it with the unmodified eager model
        artifact = SeparatorArtifact(copy.deepcopy(model).cpu().eval(), segment, overlap).eval()
        fast = SeparatorArtifact(optimize(artifact.model, target="torchscript"), segment, overlap).eval()
        with torchscript_deprecation_silenced():
            scripted = to_torchscript(fast, mode, entry.name)
            checks = compare(artifact, scripted, torch.device("cpu"), lengths)
            if target.type == "cuda":
                checks += compare(artifact, scripted.to(target), target, lengths)
            if freeze:
                scripted = torch.jit.freeze(scripted.to(target).eval(), preserved_attrs=list(EXPORTED_METHODS))
                checks += compare(artifact, scripted, target, lengths)
            else:
                scripted = scripted.cpu()
            refuse_if_any_failed(checks, path, "scripted")
            metadata = build_metadata(
                model,
                entry,
                "torchscript",
                input={"shape": ["batch", 2, "samples"], "dtype": "float32", "sample_rate": model.sample_rate},
                output={
                    "shape": ["batch", "stems", 2, "samples"],
                    "accompaniment": "for a vocal model: mixture minus the vocals estimate, computed inside the module",
                },
                chunked={
                    "method": "separate_chunked(mixture, segment, overlap, batch_size)",
                    "segment": segment,
                    "overlap": overlap,
                    "blend": "zoo_core.chunking: linear cross-fade over the overlap, sum(w*y)/sum(w)",
                },
                frozen_for=target.type if freeze else None,
                network="traced" if mode == "trace" else "scripted",  # how the network became TorchScript
                checks=[{"input": c.description, "relative_error": c.relative_error} for c in checks],
            )
            try:
                torch.jit.save(scripted, str(temporary), _extra_files={METADATA_FILE: json.dumps(metadata, indent=2)})
            except RuntimeError as exc:  # torch's file writer reports an unwritable file so, not as an OSError
                raise ZooError(f"cannot write {path}: {first_line(exc)}", exit_code=1) from None
            # read back what was written: a file that does not load must not replace anything
            torch.jit.load(str(temporary), map_location="cpu" if not freeze else target)
    return ExportResult(path, metadata, checks)
