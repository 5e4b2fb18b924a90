"""AOTInductor export: what is refused, and why, in one line (the compiled path is tested with the C++ host)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

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


def test_aoti_options_that_only_apply_to_torchscript_are_refused(tmp_path: Path):
    result = CliRunner().invoke(main, ["export", "tdf-17", "--format", "aoti", "--device", "cuda", "-o", str(tmp_path / "x.pt2")])
    assert result.exit_code == 2
    assert "compiles for the CPU only" in result.stderr
    assert list(tmp_path.iterdir()) == []
