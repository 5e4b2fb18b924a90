"""Pulling, verifying, caching and loading the authors' weights; every fault ends in a one-line ZooError."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import threading
import urllib.error
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors import safe_open
from safetensors.torch import save_file

import zoo_core
from zoo_core import get_entry
from zoo_core.cli import main
from zoo_core.errors import ZooError
from zoo_core.weights import cached_path, import_checkpoint, pull, weights_status
from zoo_core.weights import fetch

TOP1 = "cac_tdc_17_vocals_top1.pt"
TOP1_GIT_SHA1 = "d27509ca904bf3fdba2cebace57b9f3cdb3ae83a"


@pytest.fixture
def mirror(weights_mirror, monkeypatch) -> Path:
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(weights_mirror))
    return weights_mirror


@pytest.fixture
def online(monkeypatch):
    """Downloads allowed (each test using this replaces `urlopen`, so nothing really goes out)."""
    monkeypatch.delenv("ZOO_OFFLINE", raising=False)


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if anything tries to open a URL."""

    def refuse(*args, **kwargs):
        raise AssertionError("the network was used")

    monkeypatch.setattr(fetch.urllib.request, "urlopen", refuse)


def cache_files(entry_name: str = "tdc-17") -> list[str]:
    folder = cached_path(get_entry(entry_name)).parent
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def original(mirror: Path, name: str = TOP1) -> dict[str, torch.Tensor]:
    return torch.load(mirror / name, map_location="cpu", weights_only=True)


def test_pull_writes_safetensors_with_provenance_and_hash_record(mirror, no_network):
    path = pull("tdc-17:top1", progress=False)

    assert path == cached_path(get_entry("tdc-17"), "top1")
    assert cache_files() == ["top1.safetensors", "top1.safetensors.sha256"]  # the pull's lock file went with it
    recorded = (path.parent / "top1.safetensors.sha256").read_text().split()
    assert recorded == [hashlib.sha256(path.read_bytes()).hexdigest(), "top1.safetensors"]
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
        names = set(handle.keys())
    assert metadata["model"] == "tdc-17" and metadata["variant"] == "top1"
    assert metadata["source_git_sha1"] == TOP1_GIT_SHA1
    assert metadata["source_url"].endswith("/" + TOP1)
    assert metadata["torch_version"] == torch.__version__
    assert {"source_sha256", "format", "layout", "stft", "svs_zoo_version", "created"} <= set(metadata)
    assert names == set(original(mirror))
    assert not any("window" in name for name in names)


def test_a_pull_removes_what_a_killed_pull_of_that_variant_left(mirror, no_network):
    folder = cached_path(get_entry("tdc-17"), "top1").parent
    (folder / ".download-top1@k1ll3d00").mkdir(parents=True)  # a pull killed outright (SIGKILL, out of memory)
    (folder / ".download-top1@k1ll3d00" / f".{TOP1}.a1b2c3d4.part").write_bytes(b"half a file")
    (folder / "top1.lock").write_bytes(b"")
    (folder / ".download-top2@bu5y0000").mkdir()  # another variant's pull, maybe still running: not ours
    pull("tdc-17:top1", progress=False)
    assert cache_files() == [".download-top2@bu5y0000", "top1.safetensors", "top1.safetensors.sha256"]


def test_load_model_pulls_once_and_reports_its_weights(mirror, no_network):
    entry = get_entry("tdc-17")
    assert weights_status(entry) == "3 downloadable"

    model = zoo_core.load("tdc-17")

    assert weights_status(entry) == "1 of 3 cached"
    assert not model.training
    info = model.provenance.as_dict()
    assert info["model"] == "tdc-17" and info["variant"] == "top1"
    assert info["sha256"] == hashlib.sha256(cached_path(entry, "top1").read_bytes()).hexdigest()
    assert (info["source_git_sha1"], info["format"], info["layout"]) == (TOP1_GIT_SHA1, "state_dict", "ismir2020")
    assert (model.n_fft, model.hop_length, model.center) == (2048, 1024, False)
    mtime = cached_path(entry, "top1").stat().st_mtime_ns
    zoo_core.load("tdc-17", variant="top1", device=torch.device("cpu"))
    assert cached_path(entry, "top1").stat().st_mtime_ns == mtime  # served from the cache


def test_hash_mismatch_is_refused_and_nothing_is_kept(weights_mirror, tmp_path, monkeypatch):
    fake_mirror = tmp_path / "mirror"
    fake_mirror.mkdir()
    tampered = bytearray((weights_mirror / TOP1).read_bytes())
    tampered[-100] ^= 0xFF  # same size, one byte off
    (fake_mirror / TOP1).write_bytes(bytes(tampered))
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(fake_mirror))

    with pytest.raises(ZooError) as error:
        pull("tdc-17:top1", progress=False)

    message = str(error.value)
    got = hashlib.sha1(b"blob %d\0" % len(tampered) + bytes(tampered)).hexdigest()
    assert f"expected {TOP1_GIT_SHA1}, got {got}" in message and "\n" not in message
    assert error.value.exit_code == 1
    assert not cached_path(get_entry("tdc-17")).parent.exists()  # no converted file, no download, no lock, no folder


def test_corrupt_cache_file_is_detected_and_pull_repairs_it(mirror, no_network):
    path = pull("tdc-17:top1", progress=False)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # truncated

    with pytest.raises(ZooError, match=r"corrupt.*run `zoo pull tdc-17:top1` again") as error:
        zoo_core.load("tdc-17:top1")
    assert error.value.exit_code == 1

    pull("tdc-17:top1", progress=False)
    assert zoo_core.load("tdc-17:top1").provenance.variant == "top1"


def _record_execution(marker: str) -> None:
    Path(marker).write_text("the checkpoint ran code")


class CodeOnLoad:
    """Unpickling this calls `_record_execution`: what a malicious checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return _record_execution, (self.marker,)


def test_checkpoint_needing_arbitrary_unpickling_is_refused_unexecuted(mirror, tmp_path):
    marker = tmp_path / "executed"
    checkpoint = {"state_dict": original(mirror), "callbacks": CodeOnLoad(marker)}
    torch.save(checkpoint, tmp_path / "evil.ckpt")

    with pytest.raises(ZooError, match="arbitrary unpickling.*_record_execution.*trusted environment"):
        import_checkpoint(tmp_path / "evil.ckpt", "tdc-17")
    result = CliRunner().invoke(main, ["import", str(tmp_path / "evil.ckpt"), "--model", "tdc-17"])

    assert result.exit_code == 2 and result.output.count("\n") == 1 and result.output.startswith("error: ")
    assert not marker.exists()
    assert cache_files() == []


class FakeResponse(io.BytesIO):
    """An HTTP response serving ``data``; with ``error``, the connection fails after the first 100 kB."""

    def __init__(self, data: bytes, error: BaseException | None = None):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}
        self.error = error

    def read(self, size: int = -1) -> bytes:
        if self.error is not None and self.tell() >= 100_000:
            raise self.error
        return super().read(size)


@pytest.mark.parametrize("error", [ConnectionResetError("connection reset by peer"), KeyboardInterrupt()])
def test_interrupted_download_leaves_no_file(weights_mirror, monkeypatch, online, error):
    data = (weights_mirror / TOP1).read_bytes()
    monkeypatch.setattr(fetch.urllib.request, "urlopen", lambda url, timeout: FakeResponse(data, error))

    expected = ZooError if isinstance(error, Exception) else KeyboardInterrupt
    with pytest.raises(expected) as raised:
        pull("tdc-17:top1", progress=False)

    if expected is ZooError:
        assert "interrupted" in str(raised.value) and "ZOO_WEIGHTS_MIRROR" in str(raised.value)
    assert not cached_path(get_entry("tdc-17")).parent.exists()  # no file, no lock, no empty model folder


def test_network_download_is_verified_and_converted(weights_mirror, monkeypatch, online):
    data = (weights_mirror / TOP1).read_bytes()
    urls = []

    def serve(url, timeout):
        urls.append(url)
        return FakeResponse(data)

    monkeypatch.setattr(fetch, "_CHUNK", 50_000)
    monkeypatch.setattr(fetch.urllib.request, "urlopen", serve)
    model = zoo_core.load("tdc-17:top1")

    assert urls == [get_entry("tdc-17").variants["top1"].url]
    assert torch.equal(model.network.first_conv[0].weight, original(weights_mirror)["first_conv.0.weight"])


def test_unreachable_network_names_the_mirror_variable(monkeypatch, online):
    def unreachable(url, timeout):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(fetch.urllib.request, "urlopen", unreachable)
    with pytest.raises(ZooError) as error:
        zoo_core.load("tdc-17:top2")
    message = str(error.value)
    assert "Name or service not known" in message and "\n" not in message
    assert "`zoo pull tdc-17:top2` when online" in message and "ZOO_WEIGHTS_MIRROR" in message


def test_offline_without_mirror_says_how_to_get_the_weights(monkeypatch, no_network):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    with pytest.raises(ZooError, match=r"not cached; run `zoo pull tdc-17:top3`.*ZOO_WEIGHTS_MIRROR"):
        zoo_core.load("tdc-17", variant="top3")


def test_models_without_weights_and_unknown_variants(mirror):
    assert weights_status(get_entry("tfc-17")) == "none"
    with pytest.raises(ZooError, match="'tfc-17' has no released weights"):
        zoo_core.load("tfc-17")
    with pytest.raises(ZooError, match="no weights variant 'top9'"):
        zoo_core.load("tdc-17:top9")
    with pytest.raises(ZooError, match="two variants"):
        zoo_core.load("tdc-17:top1", variant="top2")
    with pytest.raises(ZooError, match="cannot use device"):
        zoo_core.load("tdc-17", device="no-such-device")


def test_concurrent_pulls_produce_one_valid_file(mirror, no_network):
    results, errors = [], []

    def worker():
        try:
            results.append(pull("tdc-17:top2", progress=False))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == [] and len(set(results)) == 1
    assert cache_files() == ["top2.safetensors", "top2.safetensors.sha256"]
    state = zoo_core.load("tdc-17:top2").network.state_dict()
    assert all(torch.equal(state[k], v) for k, v in original(mirror, "cac_tdc_17_vocals_top2.pt").items())


def test_import_names_the_released_variant_or_a_new_one(weights_mirror, tmp_path):
    copy = tmp_path / "downloaded.pt"
    shutil.copyfile(weights_mirror / "cac_tdc_17_vocals_top3.pt", copy)

    assert import_checkpoint(copy, "tdc-17").name == "top3.safetensors"
    assert zoo_core.load("tdc-17:top3").provenance.source_url.endswith("cac_tdc_17_vocals_top3.pt")
    assert import_checkpoint(copy, "tdc-17", variant="my-run").name == "my-run.safetensors"
    mine = zoo_core.load("tdc-17:my-run")
    assert mine.provenance.source_url == copy.resolve().as_uri()
    with pytest.raises(ZooError, match="is not the released tdc-17:top1"):
        import_checkpoint(copy, "tdc-17", variant="top1")
    with pytest.raises(ZooError, match="invalid weights variant name"):
        import_checkpoint(copy, "tdc-17", variant="../escape")


def test_tensors_that_do_not_fit_are_named(weights_mirror, tmp_path):
    state = original(weights_mirror)
    del state["final_conv.0.bias"]
    state["encoders.0.extra.weight"] = torch.zeros(3)
    state["first_conv.0.weight"] = torch.zeros(24, 4, 1, 2)
    torch.save(state, tmp_path / "edited.pt")

    with pytest.raises(ZooError) as error:
        import_checkpoint(tmp_path / "edited.pt", "tdc-17")
    message = str(error.value)
    assert "1 missing: final_conv.0.bias" in message
    assert "1 unexpected: encoders.0.extra.weight" in message
    assert "first_conv.0.weight [24, 4, 1, 2] (model: [24, 4, 2, 1])" in message
    assert cache_files() == []


def test_cli_pull_and_import(mirror, weights_mirror, tmp_path):
    runner = CliRunner()
    pulled = runner.invoke(main, ["pull", "tdc-17", "--all", "--quiet"])
    assert pulled.exit_code == 0, pulled.output
    assert pulled.output.split() == [str(cached_path(get_entry("tdc-17"), v)) for v in ("top1", "top2", "top3")]

    imported = runner.invoke(main, ["import", str(weights_mirror / TOP1), "--model", "tdc-17", "--variant", "again"])
    assert imported.exit_code == 0, imported.output
    first, framing = imported.output.strip().splitlines()
    assert first.endswith(str(cached_path(get_entry("tdc-17"), "again")))
    assert framing == "STFT n_fft 2048, hop 1024, center=False (from the released variant top1)"

    for args, code in ((["pull", "tfc-17"], 2), (["import", str(tmp_path / "missing.pt"), "--model", "tdc-17"], 2)):
        failed = runner.invoke(main, args)
        assert failed.exit_code == code and failed.output.startswith("error: ") and failed.output.count("\n") == 1
    assert cache_files() == [f"{v}.safetensors{suffix}" for v in ("again", "top1", "top2", "top3") for suffix in ("", ".sha256")]


def test_a_failed_cli_pull_leaves_no_model_folder_and_no_lock(weights_mirror, tmp_path, monkeypatch):
    """`zoo pull` from a mirror without the file: one error line, and the cache holds nothing for the model."""
    empty_mirror = tmp_path / "mirror"
    empty_mirror.mkdir()
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(empty_mirror))
    failed = CliRunner().invoke(main, ["pull", "tdc-17:top1"])
    assert failed.exit_code == 1 and "has no cac_tdc_17_vocals_top1.pt" in failed.output, failed.output
    assert not cached_path(get_entry("tdc-17")).parent.exists()


def test_import_of_a_safetensors_file_in_our_layout_keeps_its_stft(weights_mirror, tmp_path):
    """What `zoo train` writes: our tensor names, the STFT settings in the metadata."""
    state = original(weights_mirror)
    stft = {"n_fft": 2048, "hop_length": 512, "frames": 64, "center": False, "sample_rate": 44100}
    save_file(state, str(tmp_path / "model.safetensors"), metadata={"stft": json.dumps(stft)})

    import_checkpoint(tmp_path / "model.safetensors", "tdc-17", variant="run-1")
    model = zoo_core.load("tdc-17:run-1")

    assert model.hop_length == 512
    assert (model.provenance.format, model.provenance.layout) == ("safetensors", "svs-zoo")
    assert all(torch.equal(model.network.state_dict()[k], v) for k, v in state.items())


def test_after_an_import_the_model_name_alone_takes_the_cached_variant(tmp_path):
    """tdf-17 has no released weights: after one import `-m tdf-17` separates with it; after two, it names both."""
    import numpy as np
    import soundfile as sf

    import zoo_core

    runner = CliRunner()
    torch.manual_seed(8)
    torch.save(zoo_core.load("tdf-17", init=True).network.state_dict(), tmp_path / "a.pt")
    sf.write(tmp_path / "noise.wav", np.random.default_rng(0).standard_normal((22050, 2)).astype(np.float32) * 0.1, 44100)
    assert runner.invoke(main, ["import", str(tmp_path / "a.pt"), "--model", "tdf-17", "--variant", "mine"]).exit_code == 0

    separated = runner.invoke(main, ["separate", str(tmp_path / "noise.wav"), "-m", "tdf-17", "-o", str(tmp_path / "out"), "-q"])
    assert separated.exit_code == 0, separated.output
    assert sorted(p.name for p in (tmp_path / "out" / "tdf-17_mine" / "noise").iterdir()) == ["accompaniment.wav", "vocals.wav"]
    assert zoo_core.load("tdf-17").provenance.variant == "mine"

    assert runner.invoke(main, ["import", str(tmp_path / "a.pt"), "--model", "tdf-17", "--variant", "other"]).exit_code == 0
    ambiguous = runner.invoke(main, ["separate", str(tmp_path / "noise.wav"), "-m", "tdf-17", "-o", str(tmp_path / "again")])
    assert ambiguous.exit_code == 2 and ambiguous.stderr.count("\n") == 1, ambiguous.output
    assert "has no released weights and 2 cached variants (mine, other); name one, e.g. tdf-17:mine" in ambiguous.stderr
    assert not (tmp_path / "again").exists()


def test_import_of_a_folder_names_the_checkpoints_inside(tmp_path):
    (tmp_path / "run").mkdir()
    for name in ("model.safetensors", "card.toml", "last.ckpt"):
        (tmp_path / "run" / name).write_bytes(b"")
    (tmp_path / "empty").mkdir()
    runner = CliRunner()
    result = runner.invoke(main, ["import", str(tmp_path / "run"), "--model", "tdc-17"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert result.stderr == f"error: {tmp_path / 'run'} is a folder; give the checkpoint file inside it: last.ckpt, model.safetensors\n"
    result = runner.invoke(main, ["import", str(tmp_path / "empty"), "--model", "tdc-17"])
    assert result.exit_code == 2 and result.stderr.startswith(f"error: {tmp_path / 'empty'} is a folder; give the checkpoint")
    assert "(it holds no .pt, .pth, .ckpt, .safetensors, .bin, .th file)" in result.stderr
