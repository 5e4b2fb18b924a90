"""AOTInductor export: what is refused, and why, in one line (the compiled path is tested with the C++ host)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import zoo_core
from zoo_core.cli import main


@pytest.mark.slow
def test_recurrent_models_are_refused_with_the_reason(tmp_path: Path):
    path = tmp_path / "tdc-rnn.pt2"
    result = CliRunner().invoke(main, ["export", "tdc-rnn", "--format", "aoti", "-o", str(path)])
    assert result.exit_code == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: tdc-rnn cannot be exported with --format aoti")
    assert "GRU" in error and "TorchScript" in error
    assert list(tmp_path.iterdir()) == []


def test_freeze_is_refused_for_aoti(tmp_path: Path):
    result = CliRunner().invoke(main, ["export", "tdf-17", "--format", "aoti", "--freeze", "-o", str(tmp_path / "x.pt2")])
    assert result.exit_code == 2
    assert "--freeze applies to TorchScript" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_aoti_for_cuda_without_cuda_is_one_line(tmp_path: Path):
    result = CliRunner().invoke(main, ["export", "tdf-17", "--format", "aoti", "--device", "cuda", "-o", str(tmp_path / "x.pt2")])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: CUDA not available: this torch build or machine has no CUDA device; export with --device cpu"
    ]
    assert list(tmp_path.iterdir()) == []


def test_the_package_compiles_the_optimised_core_and_it_matches_eager():
    import zoo_core
    from zoo_core.export.aoti import SpectrogramCore, mixture_image, optimized_core
    from zoo_core.export.torchscript import TOLERANCE, relative_error
    from zoo_unet.optimize import DenseUnit

    torch.manual_seed(0)
    model = zoo_core.load("tdc-17", init=True).eval()
    core = optimized_core(model, torch.device("cpu"))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in core.modules())  # folded into the convolutions
    assert any(isinstance(m, DenseUnit) for m in core.modules())
    image = mixture_image(model, 3 * model.time_factor, 1, torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert relative_error(core(image), SpectrogramCore(model)(image)) <= TOLERANCE


def test_the_export_shows_no_torch_notice_a_user_cannot_act_on(tdc17_aoti_package):
    """torch 2.13's packager warns that its own LeafSpec class is deprecated; svs-zoo hides exactly that notice."""
    assert not [message for message in tdc17_aoti_package.warnings if "LeafSpec" in message]
