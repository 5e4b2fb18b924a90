"""ONNX export: the spectrogram core runs in ONNX Runtime like the eager core, its framing contract travels in
``metadata_props``, and what cannot be exported (or disagrees) is refused in one line without writing a file."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner
from torch import Tensor, nn

import zoo_core
from zoo_core.registry import build_model
from zoo_core.cli import main
from zoo_core.errors import ZooError
from zoo_core.export.aoti import SpectrogramCore, host_settings
from zoo_core.export.inspect import inspect_artifact, load_onnx
from zoo_core.export.onnx import OPSET, check_onnx_available, export_onnx
import zoo_core
from zoo_core.separation import SeparationSettings


@pytest.fixture(scope="module")
def clip_excerpt(clip_path: Path) -> Tensor:
    """Two seconds of the real clip's mixture from 1 s on, ``[1, 2, N]``."""
    from zoo_core.audio import open_audio

    blocks = np.concatenate(list(open_audio(clip_path).blocks()))
    return torch.from_numpy(blocks[44100:3 * 44100].T.copy())[None]


def test_metadata_round_trips_through_metadata_props(tdc17_onnx, tdc17_top1):
    session, metadata = load_onnx(tdc17_onnx.path)
    assert metadata == tdc17_onnx.metadata
    assert metadata["format"] == "onnx" and metadata["onnx"]["opset"] == OPSET
    assert metadata["weights"]["sha256"] == tdc17_top1.provenance.sha256
    assert metadata["stft"] == {"n_fft": 2048, "hop_length": 1024, "center": False, "frames": 64, "bins": 1025,
                                "window": "hann (periodic)"}
    assert (metadata["representation"], metadata["model_stems"], metadata["time_factor"]) == ("cac", ["vocals"], 1)
    assert metadata["chunked"]["segment"] == SeparationSettings().geometry(tdc17_top1)[0]
    proto = onnx.load(str(tdc17_onnx.path))
    flat = {prop.key: prop.value for prop in proto.metadata_props}
    assert {key: flat[key] for key in host_settings(metadata)} == host_settings(metadata)
    assert flat["bins"] == "1025" and flat["center"] == "0" and flat["representation"] == "cac"
    assert proto.opset_import[0].version == OPSET
    dims = [[d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim] for value in (proto.graph.input[0], proto.graph.output[0])]
    assert dims == [["batch", 4, 1025, "frames"], ["batch", 1, 4, 1025, "frames"]]


def test_onnx_runtime_matches_the_eager_core_on_other_sizes(tdc17_onnx, tdc17_top1, clip_excerpt):
    """Sizes the export never saw: batch 3, 39 frames of the real clip."""
    from zoo_core.export.onnx_runtime import OnnxCore

    image = tdc17_top1.to_image(clip_excerpt[..., : 1024 * 40].repeat(3, 1, 1))
    assert image.shape == (3, 4, 1025, 39)
    session, _ = load_onnx(tdc17_onnx.path)
    with torch.no_grad():
        expected = SpectrogramCore(tdc17_top1)(image)
    torch.testing.assert_close(OnnxCore(session)(image), expected, rtol=0, atol=1e-4 * expected.abs().max().item())
    assert all(check.passed for check in tdc17_onnx.checks) and len(tdc17_onnx.checks) == 3


# Every registered model (every block family, the magnitude framing, the recurrent blocks with a dynamic frame
# count) exported and separating with its file: tests/test_every_model.py.


@pytest.mark.slow
def test_fewer_bins_and_two_stems_follow_the_contract(clip_excerpt: Tensor, tmp_path: Path):
    """What TFC-TDF-UNet v3 uses (the lowest bins only, several stems): zero-filled bins above, no complement."""
    entry = dataclasses.replace(zoo_core.get_entry("tdc-17"), name="tdc-17-two-stems", stems=("vocals", "drums"))
    stft = dataclasses.replace(entry.stft_for(None), bins=769)  # of 1025; 768 = 3 * 2^8 halves 8 times
    torch.manual_seed(0)
    model = build_model(entry, stft=stft).eval()
    result = export_onnx(model, entry, tmp_path / "two-stems.onnx", check_frames=[1, 3, 8])
    assert result.metadata["stft"]["bins"] == 769 and result.metadata["stems"] == ["vocals", "drums"]
    hosted = zoo_core.load(result.path)
    assert hosted.stems == ["vocals", "drums"]
    with torch.no_grad():
        expected = model(clip_excerpt)
        actual = hosted(clip_excerpt)
    assert actual.shape == expected.shape == (1, 2, 2, clip_excerpt.shape[-1])
    assert (actual - expected).abs().max().item() < 1e-4


class Cummax(nn.Module):
    """An operator torch.onnx has no ONNX translation for."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.cummax(x, dim=-1).values


class OnnxOnlyDrift(nn.Module):
    """Behaves differently while being exported: what the ONNX Runtime check must catch."""

    def forward(self, x: Tensor) -> Tensor:
        return x * 1.01 if torch.onnx.is_in_onnx_export() else x


def test_unexportable_core_is_refused_with_the_reason(tmp_path: Path, capfd):
    model = zoo_core.load("tdc-17", init=True).eval()
    model.network.output_activation = Cummax()
    with pytest.raises(ZooError) as info:
        export_onnx(model, zoo_core.get_entry("tdc-17"), tmp_path / "x.onnx")
    message = str(info.value)
    assert info.value.exit_code == 1 and "\n" not in message
    assert message.startswith("tdc-17 cannot be exported to ONNX") and "aten::cummax" in message
    assert "IR graph" not in capfd.readouterr().err  # torch.onnx's graph dump is not shown to the user
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_write_when_onnx_runtime_disagrees(tmp_path: Path):
    model = zoo_core.load("tdc-17", init=True).eval()
    model.network.output_activation = OnnxOnlyDrift()
    path = tmp_path / "drift.onnx"
    path.write_bytes(b"previous file")
    with pytest.raises(ZooError, match="ONNX Runtime output differs from eager") as info:
        export_onnx(model, zoo_core.get_entry("tdc-17"), path, check_frames=[1, 2, 3])
    assert info.value.exit_code == 1
    assert path.read_bytes() == b"previous file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["drift.onnx"]  # no temporary left behind


def test_missing_onnx_packages_are_named_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(ZooError, match=r"needs onnxruntime, which is not installed: pip install 'svs-zoo\[onnx\]'"):
        check_onnx_available()


def test_cli_inspect_summarises_the_core_and_prints_its_metadata_with_json(tdc17_onnx):
    result = CliRunner().invoke(main, ["inspect", str(tdc17_onnx.path)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == str(tdc17_onnx.path)
    assert "  format      ONNX, opset 17; the spectrogram core only (the host does the STFT)" in lines
    assert lines[-1] == "  self-check  ok (1x4x1025x2 image -> 1x1x4x1025x2)"
    document = json.loads(CliRunner().invoke(main, ["inspect", str(tdc17_onnx.path), "--json"]).stdout)
    assert document["metadata"] == tdc17_onnx.metadata and document["format"] == "onnx"
    assert inspect_artifact(tdc17_onnx.path).format == "onnx"


def test_cli_refuses_torchscript_options_and_damaged_files(tmp_path: Path):
    result = CliRunner().invoke(main, ["export", "tdf-17", "--format", "onnx", "--freeze", "-o", str(tmp_path / "x.onnx")])
    assert result.exit_code == 2 and result.stderr.startswith("error: --format onnx is checked with ONNX Runtime")
    damaged = tmp_path / "damaged.onnx"
    damaged.write_bytes(b"\x08\x07not a graph")
    result = CliRunner().invoke(main, ["inspect", str(damaged)])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "ONNX Runtime cannot load it" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["damaged.onnx"]


def test_cli_exports_a_model_with_its_released_weights(weights_mirror: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(weights_mirror))
    result = CliRunner().invoke(main, ["export", "tdc-17:top2", "--format", "onnx", "-o", f"{tmp_path}/"])
    assert result.exit_code == 0, result.output
    assert f"wrote {tmp_path / 'tdc-17.onnx'}: tdc-17, weights top2" in result.stdout
    assert "3 checks against eager passed" in result.stdout
    assert load_onnx(tmp_path / "tdc-17.onnx")[1]["weights"]["variant"] == "top2"
