"""Whole catalogues: sharding, the manifest, the resume rule, and a real run — a killed `zoo separate` resumed by
two ranks under torch.distributed.run on CPU, with a bad file in the folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from zoo_core.audio import read_audio
from zoo_core.catalogue import DONE, FAILED, STARTED, Decision, Manifest, decide, record, shard

# --------------------------------------------------------------------------------------------------- rules


def test_shares_are_disjoint_complete_repeatable_and_balanced():
    seconds = list(np.random.default_rng(0).uniform(30, 600, size=200))
    shares = shard(seconds, 3)
    assert shares == shard(seconds, 3)
    assert sorted(i for share in shares for i in share) == list(range(200))
    loads = [sum(seconds[i] for i in share) for share in shares]
    assert max(loads) - min(loads) <= max(seconds)  # LPT: never more apart than one item
    # longest first to the least-loaded rank: 5 -> r0, 4 -> r1, 3 -> r1 (4 < 5), 2 -> r0, 1 -> r0 (7 = 7: lower rank)
    assert shard([1.0, 2.0, 3.0, 4.0, 5.0], 2) == [[0, 1, 4], [2, 3]]


def test_manifest_ignores_a_torn_line_and_folds_rank_shards_once(tmp_path):
    path = tmp_path / "out" / "manifest.jsonl"
    plain = Manifest(path)
    plain.append(record(tmp_path / "a.wav", {}, "m:v", DONE))
    with open(path, "a") as handle:
        handle.write('{"input": "/torn", "sta')  # a crash in the middle of a line
    for rank in (0, 1):
        Manifest(path, rank, sharded=True).append(record(tmp_path / f"r{rank}.wav", {}, "m:v", DONE, rank=rank))
    assert [Path(r["input"]).name for r in plain.records()] == ["a.wav", "r0.wav", "r1.wav"]
    shard_lines = {p.name: p.read_text() for p in plain.shards()}
    plain.fold_shards()
    assert plain.shards() == [] and [Path(r["input"]).name for r in plain.records()] == ["a.wav", "r0.wav", "r1.wav"]
    for name, text in shard_lines.items():  # a fold interrupted after the rewrite: the shards are still there
        (path.parent / name).write_text(text)
    plain.fold_shards()
    assert [Path(r["input"]).name for r in plain.records()] == ["a.wav", "r0.wav", "r1.wav"]


def test_resume_rule(tmp_path):
    def outputs(name):
        return {"vocals": tmp_path / name / "vocals.wav"}

    for name in ("done", "lost"):
        outputs(name)["vocals"].parent.mkdir()
    outputs("done")["vocals"].write_bytes(b"x")
    inputs = {name: tmp_path / f"{name}.wav" for name in ("done", "lost", "started", "failed", "new", "other")}
    records = [
        record(inputs["done"], outputs("done"), "m:v", STARTED),
        record(inputs["done"], outputs("done"), "m:v", DONE),
        record(inputs["lost"], outputs("lost"), "m:v", DONE),  # its output was deleted since
        record(inputs["started"], outputs("started"), "m:v", STARTED),  # killed mid-item
        record(inputs["failed"], outputs("failed"), "m:v", FAILED, error="bad"),
        record(inputs["other"], outputs("other"), "another:model", DONE),
    ]
    wanted = {path: outputs(name) for name, path in inputs.items()}
    decided = {name: decide(records, "m:v", wanted, force=False)[path] for name, path in inputs.items()}
    assert {name: (d.skip, d.overwrite) for name, d in decided.items()} == {
        "done": (True, False),
        "lost": (False, True),
        "started": (False, True),
        "failed": (False, True),
        "new": (False, False),  # never seen: existing outputs still need --force
        "other": (False, False),
    }
    more = {inputs["done"]: {**outputs("done"), "accompaniment": tmp_path / "done" / "accompaniment.wav"}}
    assert not decide(records, "m:v", more, force=False)[inputs["done"]].skip  # a stem it did not write
    assert all(d.overwrite and not d.skip for d in decide(records, "m:v", wanted, force=True).values())


def test_a_started_item_is_redone_even_when_its_outputs_exist(tmp_path):
    """Killed after writing its outputs but before recording ``done``: only ``done`` completes an item (module doc),
    so it is separated again, replacing those outputs; a ``done`` record with the same outputs is skipped."""
    outputs = {"vocals": tmp_path / "song" / "vocals.wav", "accompaniment": tmp_path / "song" / "accompaniment.wav"}
    outputs["vocals"].parent.mkdir()
    for path in outputs.values():
        path.write_bytes(b"x")
    song = tmp_path / "song.wav"
    started = [record(song, outputs, "m:v", STARTED)]
    assert decide(started, "m:v", {song: outputs}, force=False)[song] == Decision(skip=False, overwrite=True)
    done = [*started, record(song, outputs, "m:v", DONE)]
    assert decide(done, "m:v", {song: outputs}, force=False)[song] == Decision(skip=True, overwrite=False)


# ------------------------------------------------------------------------------------- a real catalogue


def _environment(weights_mirror: Path, home: Path) -> dict:
    return {**os.environ, "ZOO_WEIGHTS_MIRROR": str(weights_mirror), "ZOO_HOME": str(home), "ZOO_OFFLINE": "1",
            "OMP_NUM_THREADS": "1"}


def _done_records(manifest: Path) -> list[dict]:
    return [r for r in Manifest(manifest).records() if r["status"] == DONE]


@pytest.fixture(scope="module")
def catalogue(clip_path, weights_mirror, tmp_path_factory):
    """Four short files cut from the clip and a broken one; a plain run killed (SIGKILL) after its first
    finished file; then the same command under torch.distributed.run with two ranks."""
    root = tmp_path_factory.mktemp("catalogue")
    inputs = root / "in"
    inputs.mkdir()
    mixture, rate = read_audio(clip_path)
    for index, (start, seconds) in enumerate([(0.0, 1.0), (1.0, 2.0), (3.0, 1.5), (4.5, 1.2)]):
        sf.write(inputs / f"part{index}.wav", mixture[:, int(start * rate) : int((start + seconds) * rate)].T, rate,
                 subtype="FLOAT")
    (inputs / "broken.wav").write_bytes(b"RIFF\x00\x00")
    out = root / "out"
    manifest = out / "manifest.jsonl"
    environment = _environment(weights_mirror, root / "home")
    command = [str(inputs), "-o", str(out), "-q"]

    killed = subprocess.Popen([sys.executable, "-m", "zoo_core.separate", *command], env=environment,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not (manifest.exists() and _done_records(manifest)):
        assert killed.poll() is None and time.monotonic() < deadline, killed.stderr.read().decode()
        time.sleep(0.005)
    killed.send_signal(signal.SIGKILL)  # a crash: no cleanup runs
    killed.wait()
    before = Manifest(manifest).records()

    resumed = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "zoo_core.separate", *command],
        env=environment, capture_output=True, text=True, timeout=600,
    )
    records = Manifest(manifest).records()
    return {"inputs": inputs, "out": out, "before": before, "after": records[len(before) :], "resumed": resumed}


@pytest.mark.slow
def test_two_ranks_resume_a_killed_run_and_separate_each_file_once(catalogue):
    killed_done = {r["input"] for r in catalogue["before"] if r["status"] == DONE}
    assert 1 <= len(killed_done) < 4, "the first run must be killed part-way"
    after = catalogue["after"]
    assert killed_done.isdisjoint(r["input"] for r in after)  # what was complete is skipped
    done = [r["input"] for r in catalogue["before"] + after if r["status"] == DONE]
    assert sorted(Path(p).name for p in done) == ["part0.wav", "part1.wav", "part2.wav", "part3.wav"]  # once each
    assert {r["rank"] for r in after if r["status"] == DONE} == {0, 1}  # both ranks separated a share
    assert not list(catalogue["out"].glob("manifest.rank-*.jsonl"))  # rank 0 folded the shards


@pytest.mark.slow
def test_bad_file_is_recorded_as_failed_and_the_rest_complete(catalogue):
    resumed = catalogue["resumed"]
    assert resumed.returncode != 0
    assert "error: 1 of 5 files failed" in resumed.stderr
    failed = [r for r in catalogue["after"] if r["status"] == FAILED]
    assert [Path(r["input"]).name for r in failed] == ["broken.wav"] and "cannot read audio" in failed[0]["error"]
    for index in range(4):
        for stem in ("vocals", "accompaniment"):
            assert sf.info(catalogue["out"] / "tdc-17_top1" / f"part{index}" / f"{stem}.wav").frames > 0


@pytest.mark.slow
def test_catalogue_outputs_equal_a_single_process_run(catalogue, weights_mirror, tmp_path, monkeypatch):
    from zoo_core.cli import main

    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(weights_mirror))
    parts = sorted(catalogue["inputs"].glob("part*.wav"))
    single = CliRunner().invoke(main, ["separate", *map(str, parts), "-o", str(tmp_path), "-q", "--json"])
    assert single.exit_code == 0, single.stderr
    written = [Path(p) for entry in json.loads(single.stdout)["separated"] for p in entry["outputs"].values()]
    assert len(written) == 8
    for path in written:
        expected, _ = sf.read(path, dtype="float32")
        got, _ = sf.read(catalogue["out"] / path.relative_to(tmp_path), dtype="float32")
        assert got.shape == expected.shape and np.abs(got - expected).max() <= 1e-6, path
