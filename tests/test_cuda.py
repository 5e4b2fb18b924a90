"""The CUDA code paths: eager separation, the TorchScript file, the TorchScript export check and the AOTInductor
package on a GPU, each against the eager model on the CPU. Marked ``cuda``; without a CUDA device every test
skips (scripts/gpu-check.sh runs them on a GPU machine, where the clip comes as a .npy file: ZOO_CLIP_NPY).

Expected values: the eager float32 model on the CPU, itself pinned to the authors' code by the golden tests.
cuDNN's TensorFloat-32 is turned off for the comparisons (`exact_float32`): float32 is compared with float32.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import zoo_core
from zoo_core.export.torchscript import exact_float32, export_torchscript
import zoo_core
from zoo_core.inference import optimize
from zoo_core.separation import separate

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

SECONDS = 3


@pytest.fixture(scope="module")
def mixture(request) -> torch.Tensor:
    """The first seconds of the MUSDB clip's mixture, [2, N] at 44.1 kHz."""
    npy = os.environ.get("ZOO_CLIP_NPY")
    if npy:
        audio = np.load(npy)["mixture"]  # [2, N] float32, written by `scripts/gpu-check.sh prepare`
    else:
        import av

        with av.open(str(request.getfixturevalue("clip_path"))) as container:
            audio = np.concatenate([f.to_ndarray() for f in container.decode(container.streams.audio[0])], axis=1)
    return torch.from_numpy(np.ascontiguousarray(audio[:, : SECONDS * 44100], dtype=np.float32))


def on_cpu(model, mixture: torch.Tensor) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return separate(model, mixture, 44100)


def assert_stems_close(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert actual.keys() == expected.keys()
    for stem in expected:
        assert (actual[stem].cpu() - expected[stem]).abs().max().item() < 1e-4, stem


def test_eager_separation_on_cuda_equals_cpu(tdc17_top1, mixture):
    expected = on_cpu(tdc17_top1, mixture)
    with exact_float32(), torch.no_grad():
        # as `zoo separate --device cuda` runs it (optimize copies the model; the fixture stays on the CPU)
        actual = separate(optimize(copy.deepcopy(tdc17_top1).to("cuda")), mixture, 44100)
    assert_stems_close(actual, expected)


def test_v3_on_cuda_equals_cpu(mixture):
    torch.manual_seed(0)
    model = zoo_core.load("tfc-tdf-v3-small", init=True).eval()
    expected = on_cpu(model, mixture)
    with exact_float32(), torch.no_grad():
        actual = separate(optimize(model.to("cuda")), mixture, 44100)
    assert_stems_close(actual, expected)


def test_torchscript_file_separates_on_cuda(tdc17_top1, tdc17_torchscript, mixture):
    expected = on_cpu(tdc17_top1, mixture)
    hosted = zoo_core.load(tdc17_torchscript, device="cuda")
    with exact_float32(), torch.no_grad():
        actual = separate(hosted, mixture, 44100)
    assert_stems_close(actual, expected)


def test_torchscript_export_checks_on_cuda(tdc17_top1, tmp_path: Path):
    result = export_torchscript(tdc17_top1, zoo_core.get_entry("tdc-17"), tmp_path / "tdc-17.ts.pt",
                                check_lengths=[1025, 3079, 6145], device="cuda")
    assert any("cuda" in check.description for check in result.checks)
    assert all(check.passed for check in result.checks)
    assert (tmp_path / "tdc-17.ts.pt").is_file()


@pytest.mark.slow
def test_aoti_package_compiled_for_cuda_separates_on_cuda(tdc17_top1, mixture, tmp_path: Path):
    from zoo_core.export.aoti import export_aoti

    result = export_aoti(tdc17_top1, zoo_core.get_entry("tdc-17"), tmp_path / "tdc-17.pt2", device="cuda",
                         check_frames=[1, 3, 8])
    assert result.metadata["device"] == "cuda"
    expected = on_cpu(tdc17_top1, mixture)
    hosted = zoo_core.load(result.path, device="cuda")
    with exact_float32(), torch.no_grad():
        actual = separate(hosted, mixture, 44100)
    assert_stems_close(actual, expected)
