"""Whole catalogues: sharding, the manifest, the resume rule, and a real run — a killed `zoo separate` resumed by
two ranks under torch.distributed.run on CPU, with a bad file in the folder."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

import zoo_core
from zoo_core.audio import read_audio
from zoo_core.manifest import DONE, FAILED, STARTED, Decision, Manifest, decide, record, run_settings, shard
from zoo_core.cli import main
import zoo_core
from zoo_core.separation import separate

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


def test_a_line_appended_after_a_torn_one_is_read_back(tmp_path):
    """A kill mid-write leaves the last line without its end; the next run's first record must not be glued to
    it (it would be unreadable too)."""
    path = tmp_path / "manifest.jsonl"
    book = Manifest(path)
    book.append(record(tmp_path / "a.wav", {}, "m:v", DONE))
    with open(path, "a") as handle:
        handle.write('{"input": "/torn", "sta')
    book.append(record(tmp_path / "b.wav", {}, "m:v", STARTED))
    book.append(record(tmp_path / "b.wav", {}, "m:v", DONE))
    assert [(Path(r["input"]).name, r["status"]) for r in book.records()] == [
        ("a.wav", DONE), ("b.wav", STARTED), ("b.wav", DONE)]


def test_folding_while_a_rank_still_appends_loses_no_record(tmp_path):
    """An interrupted torchrun run folds the shards while other ranks may still be writing: every record a rank
    appended ends up in the manifest exactly once (by that fold, or by a later one)."""
    path = tmp_path / "manifest.jsonl"
    writer, folder = Manifest(path, rank=1, sharded=True), Manifest(path)
    count = 400

    def append_all():
        for index in range(count):
            writer.append(record(tmp_path / f"{index}.wav", {}, "m:v", DONE, rank=1))

    thread = threading.Thread(target=append_all)
    thread.start()
    while thread.is_alive():
        folder.fold_shards()
    thread.join()
    folder.fold_shards()
    assert folder.shards() == []
    names = [Path(json.loads(line)["input"]).name for line in path.read_text().splitlines()]
    assert sorted(names) == sorted(f"{index}.wav" for index in range(count))


SETTINGS = dict(model="m:v", weights="a" * 64, artifact=None, method="overlap-add", segment=6.0, overlap=0.25,
                precision="fp32", format="wav", bits="float")


def test_resume_rule(tmp_path):
    def outputs(name):
        return {"vocals": tmp_path / name / "vocals.wav"}

    settings = run_settings(**SETTINGS)
    for name in ("done", "lost", "old"):
        outputs(name)["vocals"].parent.mkdir()
    outputs("done")["vocals"].write_bytes(b"x")
    outputs("old")["vocals"].write_bytes(b"x")
    inputs = {name: tmp_path / f"{name}.wav" for name in ("done", "lost", "started", "failed", "new", "other", "old")}
    records = [
        record(inputs["done"], outputs("done"), "m:v", STARTED, settings=settings),
        record(inputs["done"], outputs("done"), "m:v", DONE, settings=settings),
        record(inputs["lost"], outputs("lost"), "m:v", DONE, settings=settings),  # its output was deleted since
        record(inputs["started"], outputs("started"), "m:v", STARTED, settings=settings),  # killed mid-item
        record(inputs["failed"], outputs("failed"), "m:v", FAILED, error="bad", settings=settings),
        record(inputs["other"], outputs("other"), "another:model", DONE, settings=settings),
        record(inputs["old"], outputs("old"), "m:v", DONE),  # by an svs-zoo that recorded no settings
    ]
    wanted = {path: outputs(name) for name, path in inputs.items()}
    decided = {name: decide(records, "m:v", wanted, False, settings)[path] for name, path in inputs.items()}
    assert {name: (d.skip, d.overwrite) for name, d in decided.items()} == {
        "done": (True, False),
        "lost": (False, True),
        "started": (False, True),
        "failed": (False, True),
        "new": (False, False),  # never seen: existing outputs still need --force
        "other": (False, False),
        "old": (False, True),  # its settings are unknown: done again
    }
    assert decided["lost"].reason == "vocals.wav gone since" and decided["started"].reason is None
    assert "without its settings" in decided["old"].reason
    more = {inputs["done"]: {**outputs("done"), "accompaniment": tmp_path / "done" / "accompaniment.wav"}}
    stem_added = decide(records, "m:v", more, False, settings)[inputs["done"]]
    assert not stem_added.skip and stem_added.reason == "accompaniment not written then"
    assert all(d.overwrite and not d.skip for d in decide(records, "m:v", wanted, True, settings).values())


@pytest.mark.parametrize("change, reason", [
    ({"precision": "bf16"}, "precision fp32 -> bf16"),
    ({"method": "authors", "segment": None, "overlap": None}, "method overlap-add -> authors"),
    ({"segment": 3.0, "overlap": 0.5}, "segment 6 s -> 3 s, overlap 0.25 -> 0.5"),
    ({"weights": "b" * 64}, "weights aaaaaaaa -> weights bbbbbbbb"),
    ({"weights": None, "artifact": "c" * 64, "precision": None}, "weights aaaaaaaa -> artifact cccccccc"),
    ({"bits": "16"}, "bits float -> 16"),
])
def test_a_done_input_with_other_output_defining_settings_is_done_again(tmp_path, change, reason):
    song, outputs = tmp_path / "song.wav", {"vocals": tmp_path / "song" / "vocals.wav"}
    outputs["vocals"].parent.mkdir()
    outputs["vocals"].write_bytes(b"x")
    done = [record(song, outputs, "m:v", DONE, settings=run_settings(**SETTINGS))]
    decision = decide(done, "m:v", {song: outputs}, False, run_settings(**{**SETTINGS, **change}))[song]
    assert (decision.skip, decision.overwrite, decision.reason) == (False, True, reason)
    assert decide(done, "m:v", {song: outputs}, False, run_settings(**SETTINGS))[song].skip  # the same: skipped


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
    """Four short files cut from the clip and a broken one; the catalogue under torch.distributed.run with two
    ranks, stopped by SIGTERM (which torchrun forwards to the ranks) after its first finished file; then the same
    command again. (A plain run killed outright is `interrupted`'s.)"""
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
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                "-m", "zoo_core.cli", "separate", str(inputs), "-o", str(out), "-q"]

    stopped = subprocess.Popen(torchrun, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not (manifest.parent.exists() and _done_records(manifest)):  # in the ranks' shards, until folded
        assert stopped.poll() is None and time.monotonic() < deadline, stopped.stderr.read().decode()
        time.sleep(0.005)
    recorded = Manifest(manifest).records()
    stopped.send_signal(signal.SIGTERM)
    _, stderr = stopped.communicate(timeout=120)
    left = {"returncode": stopped.returncode, "stderr": stderr.decode(), "recorded": recorded,
            "shards": [p.name for p in out.iterdir() if ".rank-" in p.name], "manifest": _read_manifest(manifest),
            "temporaries": _temporaries(root), "lock": (out / ".zoo.lock").exists()}
    before = Manifest(manifest).records()

    resumed = subprocess.run(torchrun, env=environment, capture_output=True, text=True, timeout=600)
    records = Manifest(manifest).records()
    return {"inputs": inputs, "out": out, "before": before, "after": records[len(before) :], "resumed": resumed,
            "stopped": left}


@pytest.mark.slow
def test_torchrun_stopped_by_sigterm_folds_the_rank_manifests_on_its_way_out(catalogue):
    """Rank 0 folds every rank's records into the manifest before it exits (not only the next run does), and
    the ranks leave no temporary and no lock."""
    stopped = catalogue["stopped"]
    assert stopped["returncode"] != 0 and stopped["shards"] == [], stopped["stderr"]
    key = lambda r: (r["input"], r["status"], r["time"])  # noqa: E731
    assert {key(r) for r in stopped["recorded"]} <= {key(r) for r in stopped["manifest"]}, stopped["stderr"]
    assert stopped["temporaries"] == [] and not stopped["lock"]


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


# ---------------------------------------------------------------------------- reruns, locks and leftovers


@pytest.fixture
def zoo(weights_mirror, monkeypatch):
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(weights_mirror))
    runner = CliRunner()
    return lambda *args: runner.invoke(main, [str(a) for a in args], catch_exceptions=False)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_a_rerun_with_other_output_settings_redoes_the_file_and_says_what_differs(zoo, tdc17_torchscript, tmp_path):
    """Into one -o, each run changes what defines the outputs; each redoes the file, says so in one line, and
    writes what a separation with exactly those settings gives. The same settings again skip."""
    import zoo_core
    from zoo_core.weights import cached_path

    song, out = tmp_path / "song.wav", tmp_path / "out"
    mixture = (np.random.default_rng(5).standard_normal((11025, 2)) * 0.1).astype(np.float32)  # 0.25 s
    sf.write(song, mixture, 44100, subtype="FLOAT")
    assert zoo("separate", song, "-o", out, "-q").exit_code == 0
    weights, artifact = _sha256(cached_path(zoo_core.get_entry("tdc-17"), "top1"))[:8], _sha256(tdc17_torchscript)[:8]
    # segments are whole STFT hops (README): 0.2 s is 8.6 hops of 1024 at 44.1 kHz, so 9 (0.209 s), with
    # round(0.5 * 9) = 4 of them shared; the default is the 63-hop training window (1.463 s) sharing 0.25 of it
    hops = round(0.2 * 44100 / 1024)
    short, segment, overlap = ["--segment", "0.2", "--overlap", "0.5"], f"{hops * 1024 / 44100:.4g} s", f"{round(0.5 * hops) / hops:.3g}"
    fp32, bf16 = (zoo_core.load("tdc-17", device="cpu", precision=precision) for precision in ("fp32", "bf16"))
    exported = zoo_core.load(tdc17_torchscript)
    steps = [  # each changes one setting or two from the step before
        (["--bits", "16"], "bits float -> 16", fp32, {}),
        (["--bits", "16", "--precision", "bf16"], "precision fp32 -> bf16", bf16, {}),
        (["--bits", "16", "--method", "authors"], "method overlap-add -> authors, precision bf16 -> fp32", fp32,
         dict(method="authors")),
        (["--bits", "16", "--artifact", tdc17_torchscript],
         f"weights {weights} -> artifact {artifact}, method authors -> overlap-add", exported, {}),
        (["--bits", "16", "--artifact", tdc17_torchscript, *short], f"segment 1.463 s -> {segment}, overlap 0.254 -> "
         f"{overlap}", exported, dict(segment=0.2, overlap=0.5)),
    ]
    vocals = out / "tdc-17_top1" / "song" / "vocals.wav"
    previous, _ = sf.read(vocals, dtype="float32", always_2d=True)
    for args, difference, model, options in steps:
        result = zoo("separate", song, "-o", out, *args, "--json")
        assert result.exit_code == 0, (args, result.stderr)
        said = [line for line in result.stderr.splitlines() if line.startswith("redoing")]
        assert said == [f"redoing song.wav: {difference}"], (args, result.stderr)
        assert json.loads(result.stdout)["redone"] == [{"input": str(song), "reason": difference}]
        expected = separate(model, torch.from_numpy(mixture.T.copy()), 44100, **options)["vocals"].numpy().T
        written, _ = sf.read(vocals, dtype="float32", always_2d=True)
        assert sf.info(vocals).subtype == "PCM_16"
        assert np.abs(written - expected).max() <= 1 / 32768, args  # the expected value rounded to 16 bits
        assert np.abs(written - previous).max() > 1 / 32768 or args == ["--bits", "16"], args  # it was redone
        previous = written
    again = zoo("separate", song, "-o", out, *steps[-1][0], "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["skipped"] == [str(song)], again.stderr
    assert "redoing" not in again.stderr
    done = [r for r in Manifest(out / "manifest.jsonl").records() if r["status"] == DONE]
    assert len(done) == 1 + len(steps) and done[-1]["settings"]["artifact"] == _sha256(tdc17_torchscript)


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".part" in p.name]


@pytest.fixture(scope="module")
def interrupted(weights_mirror, tmp_path_factory):
    """A run stopped (SIGSTOP) while it writes its outputs; a second run on the same -o meanwhile; the first run
    then killed (SIGKILL) and its manifest's last line torn, as a kill mid-write leaves it; the command again."""
    root = tmp_path_factory.mktemp("interrupted")
    song, out = root / "song.wav", root / "out"
    sf.write(song, (np.random.default_rng(6).standard_normal((88200, 2)) * 0.1).astype(np.float32), 44100,
             subtype="FLOAT")
    environment = _environment(weights_mirror, root / "home")
    command = ["separate", str(song), "-o", str(out), "-q"]
    first = subprocess.Popen([sys.executable, "-m", "zoo_core.cli", *command], env=environment,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not (out.exists() and _temporaries(out)):  # its outputs are being written
        assert first.poll() is None and time.monotonic() < deadline, first.stderr.read().decode()
        time.sleep(0.005)
    first.send_signal(signal.SIGSTOP)
    runner = CliRunner()
    settings = {key: environment[key] for key in ("ZOO_WEIGHTS_MIRROR", "ZOO_HOME", "ZOO_OFFLINE")}
    second = runner.invoke(main, command, env=settings)
    records_meanwhile = Manifest(out / "manifest.jsonl").records()
    first.send_signal(signal.SIGKILL)
    first.wait()
    left = {"temporaries": _temporaries(root), "lock": (out / ".zoo.lock").exists()}
    with open(out / "manifest.jsonl", "a") as handle:
        handle.write('{"input": "' + str(song))  # torn by the kill
    before = len(Manifest(out / "manifest.jsonl").records())
    rerun = runner.invoke(main, [*command, "--json"], env=settings)
    return {"root": root, "out": out, "song": song, "second": second, "records_meanwhile": records_meanwhile,
            "left": left, "rerun": rerun, "after": Manifest(out / "manifest.jsonl").records()[before:]}


@pytest.mark.slow
def test_a_second_run_on_a_busy_output_folder_is_refused_in_one_line(interrupted):
    second, out = interrupted["second"], interrupted["out"]
    assert second.exit_code == 1 and second.stderr.count("\n") == 1, second.stderr
    assert second.stderr.startswith(f"error: another zoo run is writing to {out} ")
    # the manifest holds the first run's record alone: the refused run wrote nothing into it
    assert [(r["status"], r["rank"]) for r in interrupted["records_meanwhile"]] == [(STARTED, 0)]


@pytest.mark.slow
def test_a_rerun_removes_the_temporaries_and_the_lock_a_killed_run_left(interrupted):
    left, out = interrupted["left"], interrupted["out"]
    assert left["temporaries"], "the killed run must have left a temporary"
    assert all(out in p.parents for p in left["temporaries"])  # inside the output folder, never above it
    rerun = interrupted["rerun"]
    assert rerun.exit_code == 0, rerun.stderr
    assert _temporaries(interrupted["root"]) == []
    assert left["lock"] and not (out / ".zoo.lock").exists()  # the rerun took the dead run's lock over, then removed it
    for stem in ("vocals", "accompaniment"):
        assert sf.info(out / "tdc-17_top1" / "song" / f"{stem}.wav").frames == 88200


@pytest.mark.slow
def test_the_records_after_a_torn_manifest_line_are_read_back(interrupted):
    """The rerun's first record follows a line torn by the kill; both its records must be readable."""
    song = str(interrupted["song"])
    assert [(r["input"], r["status"]) for r in interrupted["after"]] == [(song, STARTED), (song, DONE)]


def _read_manifest(path: Path) -> list[dict]:
    """The manifest's own lines (not its shards')."""
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
