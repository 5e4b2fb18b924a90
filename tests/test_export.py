"""TorchScript export: every model scripts and matches eager, files are atomic, bad input gets one line."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import av
import pytest
import torch
from click.testing import CliRunner
from torch import Tensor, nn

import zoo_core
from zoo_core.cli import main
from zoo_core.errors import ZooError
from zoo_core.export.inspect import inspect_artifact, load_torchscript
from zoo_core.export.torchscript import export_torchscript
from zoo_core.separation import SeparationSettings


def small_lengths(model) -> list[int]:
    """Shorter than one STFT window, not a multiple of the hop, and a few frames: quick for every model."""
    return [model.n_fft // 2 + 1, 3 * model.hop_length + 7, 6 * model.hop_length + 1]


@pytest.fixture(scope="module")
def tdc17(tdc17_top1):
    """tdc-17 with the authors' top1 weights, described as the weights loader describes them (conftest)."""
    return tdc17_top1


@pytest.fixture(scope="module")
def tdc17_artifact(tdc17_torchscript) -> Path:
    return tdc17_torchscript  # exported once per session with small_lengths(tdc-17), shared with other tests


# Every registered model's export to every format, and a separation with each file: tests/test_every_model.py.


def test_metadata_describes_weights_and_contract(tdc17_artifact: Path, tdc17):
    module, metadata = load_torchscript(tdc17_artifact)
    assert metadata["weights"]["sha256"] == tdc17.provenance.sha256
    assert metadata["weights"]["variant"] == "top1"
    assert metadata["entry"]["name"] == "tdc-17" and metadata["entry"]["variants"]["top1"]["file"]
    assert metadata["stems"] == ["vocals", "accompaniment"] == module.stems()
    assert metadata["stft"] == {**metadata["stft"], "n_fft": 2048, "hop_length": 1024, "center": False}
    assert metadata["torch_version"] == str(torch.__version__)
    assert metadata["svs_zoo_version"] == zoo_core.__version__
    segment, overlap = SeparationSettings().geometry(tdc17)  # the defaults of `zoo separate`
    assert metadata["chunked"]["segment"] == module.default_segment() == segment
    assert metadata["chunked"]["overlap"] == module.default_overlap() == overlap


def test_chunked_method_blends_segments_like_python(tdc17_artifact: Path, tdc17, clip_path: Path):
    with av.open(str(clip_path)) as container:
        frames = [f.to_ndarray() for f in container.decode(container.streams.audio[0])]
    mixture = torch.from_numpy(__import__("numpy").concatenate(frames, axis=1)).float()[None, :, :40000]
    module, _ = load_torchscript(tdc17_artifact)
    segment, overlap = 16000, 3000
    with torch.no_grad():
        chunked = module.separate_chunked(mixture, segment, overlap, 2)
        weights_sum = torch.zeros(mixture.shape[-1])
        expected = torch.zeros_like(mixture)
        for start in zoo_core.chunking.segment_starts(mixture.shape[-1], segment, overlap):
            piece = mixture[..., start : start + segment]
            weights = zoo_core.chunking.overlap_weights(piece.shape[-1], overlap)
            expected[..., start : start + segment] += tdc17(piece)[:, 0] * weights
            weights_sum[start : start + segment] += weights
    torch.testing.assert_close(chunked[:, 0], expected / weights_sum, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(chunked.sum(1), mixture)


class ScriptOnlyDrift(nn.Module):
    """Behaves differently once scripted: what the exporter's check must catch."""

    def forward(self, x: Tensor) -> Tensor:
        if torch.jit.is_scripting():
            return x * 1.01
        return x


def test_refuses_to_write_when_scripted_disagrees(tmp_path: Path):
    model = zoo_core.load("tdf-17", init=True).eval()
    model.network.output_activation = ScriptOnlyDrift()
    path = tmp_path / "drift.ts.pt"
    path.write_bytes(b"previous artifact")
    with pytest.raises(ZooError, match="differs from eager") as info:
        export_torchscript(model, zoo_core.get_entry("tdf-17"), path, check_lengths=small_lengths(model))
    assert info.value.exit_code == 1
    assert path.read_bytes() == b"previous artifact"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["drift.ts.pt"]  # no temporary left behind


def test_unwritable_paths_fail_before_any_work(tmp_path: Path):
    model = zoo_core.load("tdf-17", init=True)
    entry = zoo_core.get_entry("tdf-17")
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ZooError, match="is a file, not a folder"):
        export_torchscript(model, entry, tmp_path / "a-file" / "x.ts.pt")
    with pytest.raises(ZooError, match="it is a folder"):
        export_torchscript(model, entry, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_cuda_without_cuda_is_a_clear_error(tmp_path: Path):
    model = zoo_core.load("tdf-17", init=True)
    with pytest.raises(ZooError, match="CUDA not available"):
        export_torchscript(model, zoo_core.get_entry("tdf-17"), tmp_path / "x.ts.pt", device="cuda")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_frozen_export_is_named_for_its_device(tmp_path: Path):
    model = zoo_core.load("tdf-17", init=True).eval()
    result = export_torchscript(
        model, zoo_core.get_entry("tdf-17"), tmp_path / "vocals.ts.pt", freeze=True, check_lengths=small_lengths(model)
    )
    assert result.path == tmp_path / "vocals.frozen-cpu.ts.pt"
    assert len(result.checks) == 8 and all(check.passed for check in result.checks)
    module, metadata = load_torchscript(result.path)
    assert metadata["frozen_for"] == "cpu"
    assert module(torch.zeros(1, 2, 500)).shape == (1, 2, 2, 500)


def rewrite_metadata(source: Path, target: Path, change) -> None:
    """Copy a TorchScript archive with its zoo.json changed by ``change(dict)``."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            data = old.read(item)
            if item.filename.endswith("/extra/zoo.json"):
                data = json.dumps(change(json.loads(data))).encode()
            new.writestr(item, data)


def test_inspect_refuses_artifacts_from_a_newer_torch(tdc17_artifact: Path, tmp_path: Path):
    newer = tmp_path / "newer.ts.pt"
    rewrite_metadata(tdc17_artifact, newer, lambda meta: {**meta, "torch_version": "99.1.0"})
    with pytest.raises(ZooError, match="exported with torch 99.1.0, newer than this torch"):
        inspect_artifact(newer)


def test_inspect_reports_damaged_and_foreign_files(tdc17_artifact: Path, tmp_path: Path):
    truncated = tmp_path / "truncated.ts.pt"
    truncated.write_bytes(tdc17_artifact.read_bytes()[: tdc17_artifact.stat().st_size // 2])
    with pytest.raises(ZooError, match="not an exported model"):
        inspect_artifact(truncated)
    plain = tmp_path / "plain.ts.pt"
    torch.jit.save(torch.jit.script(nn.Linear(2, 2)), str(plain))
    with pytest.raises(ZooError, match="not an svs-zoo artifact"):
        inspect_artifact(plain)
    with pytest.raises(ZooError, match="no such file"):
        inspect_artifact(tmp_path / "absent.ts.pt")


def test_cli_inspect_summarises_first_and_prints_the_whole_metadata_with_json(tdc17_artifact: Path):
    """The authors' top1 file hashes to 45c7dd11479a...; tdc-17 frames as the paper's code: n_fft 2048, hop 1024,
    no centring, all 1025 bins, complex-as-channels mapping."""
    result = CliRunner().invoke(main, ["inspect", str(tdc17_artifact)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        str(tdc17_artifact),
        "  model       tdc-17 at 44100 Hz",
        "  format      TorchScript, portable (CPU and CUDA)",
        "  stems       vocals, accompaniment (the network gives vocals)",
        "  framing     n_fft 2048, hop 1024, not centred, 1025 bins, complex-as-channels mapping; segment 64512 "
        "samples (1.46 s), overlap 16384",
        "  weights     tdc-17:top1, sha256 45c7dd11479a",
        f"  made with   torch {torch.__version__}, svs-zoo {zoo_core.__version__}",
        "  self-check  ok (1x2x1000 samples -> 1x2x2x1000)",
    ]
    as_json = CliRunner().invoke(main, ["inspect", str(tdc17_artifact), "--json"])
    assert as_json.exit_code == 0, as_json.output
    document = json.loads(as_json.stdout)
    with zipfile.ZipFile(tdc17_artifact) as archive:  # read back independently of the inspector
        (name,) = [n for n in archive.namelist() if n.endswith("/extra/zoo.json")]
        assert document["metadata"] == json.loads(archive.read(name))
    assert (document["format"], document["self_check"]) == ("torchscript", "ok (1x2x1000 samples -> 1x2x2x1000)")


@pytest.mark.slow
def test_cli_exports_a_model_without_weights_to_the_current_folder(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["export", "tdf-17"])
    assert result.exit_code == 0, result.output
    assert "no released or cached weights" in result.stderr
    assert "wrote tdf-17.ts.pt" in result.stdout
    assert load_torchscript(tmp_path / "tdf-17.ts.pt")[1]["weights"] is None


@pytest.mark.parametrize(
    "args, message",
    [
        (["export", "tdc-42"], "error: unknown model 'tdc-42'"),
        (["export", "tdc-17:top9"], "error: model 'tdc-17' has no weights variant 'top9'"),
        (["export", "tdf-17", "--format", "onnx", "--device", "cuda"],
         "error: --format onnx is checked with ONNX Runtime on the CPU"),
        (["inspect", "nowhere.ts.pt"], "error: nowhere.ts.pt: no such file"),
    ],
)
def test_cli_bad_input_is_one_line(args: list[str], message: str):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert result.stderr.strip() == message or result.stderr.strip().startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_names_the_pull_command_when_weights_are_not_cached(tmp_path: Path):
    result = CliRunner().invoke(main, ["export", "tdc-17", "-o", str(tmp_path / "x.ts.pt")])
    assert result.exit_code != 0
    assert "zoo pull" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_cli_the_output_name_chooses_the_format_and_a_name_without_suffix_is_a_folder(tmp_path: Path):
    runner = CliRunner()
    suffixed = runner.invoke(main, ["export", "tdf-17", "--init", "-o", str(tmp_path / "x.onnx")])
    assert suffixed.exit_code == 0, suffixed.output
    assert inspect_artifact(tmp_path / "x.onnx").format == "onnx"  # read back: ONNX Runtime runs it
    folder = runner.invoke(main, ["export", "tdf-17", "--init", "--format", "onnx", "-o", str(tmp_path / "new")])
    assert folder.exit_code == 0, folder.output
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["tdf-17.onnx"]
    assert inspect_artifact(tmp_path / "new" / "tdf-17.onnx").metadata["model"] == "tdf-17"

    for name, fmt, message in [
        ("y.onnx", "torchscript", "names an ONNX file but --format torchscript writes a TorchScript file"),
        ("y.ts.pt", "aoti", "names a TorchScript file but --format aoti writes an AOTInductor file: name it with .pt2"),
        ("y.pt2", "onnx", "names an AOTInductor file but --format onnx writes an ONNX file: name it with .onnx"),
    ]:
        refused = runner.invoke(main, ["export", "tdf-17", "--init", "--format", fmt, "-o", str(tmp_path / name)])
        assert refused.exit_code == 2 and refused.stderr.count("\n") == 1, refused.output
        assert message in refused.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "x.onnx"]


@pytest.mark.parametrize("suffix", [".ts.pt", ".pt2", ".onnx"])
def test_cli_export_where_nothing_can_be_written_is_one_line_before_any_work(unwritable_folder: Path, suffix: str):
    target = unwritable_folder / f"tdf-17{suffix}"
    result = CliRunner().invoke(main, ["export", "tdf-17", "--init", "-o", str(target)])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith(f"error: cannot write {target}: cannot create a file in {unwritable_folder}")
    assert not target.exists()
