"""`zoo serve` at the API level (Starlette's TestClient, in this process): uploads and their limits, names that try
to leave the work folder, the bind-address rule, the cleanup rule, the queue through the manifest and its
resume after a restart, weight pulls, bad input as messages. The page in a real browser: test_serve_browser.py."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from starlette.testclient import TestClient  # the serve extra is part of the test install: missing, this fails

from zoo_core.audio import read_audio
from zoo_core.errors import ZooError
from zoo_core.serve import EXTRA_HINT, check_bind
from zoo_core.serve.app import create_app
from zoo_core.serve.workdir import JOB_FILE, safe_name

BASE = "http://127.0.0.1:7860"
PAGE = {"X-Zoo-Page": "1"}


@pytest.fixture(scope="module")
def weights_home(weights_mirror, tmp_path_factory):
    """A ZOO_HOME holding tdc-17's authors' weights, pulled once from the mirror for the whole module."""
    from zoo_core.weights import pull

    home = tmp_path_factory.mktemp("serve-home")
    saved = {key: os.environ.get(key) for key in ("ZOO_HOME", "ZOO_WEIGHTS_MIRROR")}
    os.environ.update(ZOO_HOME=str(home), ZOO_WEIGHTS_MIRROR=str(weights_mirror))
    try:
        pull("tdc-17", progress=False)
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    return home


@pytest.fixture
def home(weights_home, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(weights_home))
    return weights_home


@pytest.fixture(scope="module")
def mixture(clip_path, tmp_path_factory) -> Path:
    """The first second of the real clip's mixture as a WAV (short: the queue tests separate it several times)."""
    audio, rate = read_audio(clip_path)
    path = tmp_path_factory.mktemp("audio") / "clip-1s.wav"
    sf.write(path, audio[:, :rate].T, rate, subtype="FLOAT")
    return path


def _client(work: Path, **options) -> TestClient:
    return TestClient(create_app(work, **options), base_url=BASE)


def _upload(client: TestClient, data: bytes, name: str, model: str = "tdc-17", **query):
    return client.post("/api/jobs", params={"name": name, "model": model, **query}, content=data, headers=PAGE)


def _wait(client: TestClient, done, timeout: float = 120.0) -> dict:
    """Poll the page's state until ``done(state)``; the state then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get("/api/state").json()
        if done(state):
            return state
        time.sleep(0.1)
    raise AssertionError(f"timed out; last state {state}")


def _finished(count: int):
    return lambda s: len(s["jobs"]) == count and all(j["state"] in ("done", "failed") for j in s["jobs"])


def _manifest(work: Path) -> list[dict]:
    return [json.loads(line) for line in (work / "manifest.jsonl").read_text().splitlines()]


def _files_outside(root: Path, work: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_relative_to(work)]


# ---------------------------------------------------------------------------------------------- names and paths


@pytest.mark.parametrize("name, expected", [
    ("../../etc/passwd", "passwd"),
    ("..\\..\\Windows\\evil.wav", "evil.wav"),
    ("/etc/cron.d/job.wav", "job.wav"),
    ("..", "upload"),
    (".bashrc", "bashrc"),
    ("a/../../b.wav", "b.wav"),
    ("song\x00.wav\n", "song.wav"),
    ("", "upload"),
    ("ok name (live).flac", "ok name (live).flac"),
])
def test_safe_name_keeps_one_harmless_component(name, expected):
    assert safe_name(name) == expected


def test_safe_name_shortens_long_names_keeping_the_extension():
    name = safe_name("é" * 300 + ".wav")
    assert name.endswith(".wav") and len(name.encode("utf-8")) <= 180 and "/" not in name


def test_upload_names_that_climb_out_stay_inside_the_work_folder(home, mixture, tmp_path):
    work = tmp_path / "work"
    client = _client(work)  # no lifespan: the worker does not start, the uploads stay queued
    data = mixture.read_bytes()
    for name in ["../../escape.wav", "..%2F..%2Fescape.wav", "/tmp/escape.wav", "..\\..\\escape.wav", "jobs/../../escape.wav"]:
        response = _upload(client, data, name)
        assert response.status_code == 201, response.text
        stored = work / "jobs" / response.json()["id"] / response.json()["name"]
        assert stored.is_file() and stored.parent.parent == work / "jobs"
    assert _files_outside(tmp_path, work) == []
    assert sorted(p.name for p in work.rglob("*escape.wav")) == ["%2F..%2Fescape.wav", *["escape.wav"] * 4]
    job = client.get("/api/state").json()["jobs"][0]["id"]
    for path in [f"/api/jobs/{job}/stems/..%2F{JOB_FILE}", f"/api/jobs/..%2F..%2F{job}/zip", "/api/jobs/../../etc/passwd/zip",
                 f"/api/jobs/{job}/stems/vocals", f"/api/jobs/{'0' * 32}/zip", "/api/jobs/..%2Fmanifest.jsonl/zip",
                 "/static/..%2F..%2Fjobs.py", "/static/../app.py"]:
        response = client.get(path)
        assert response.status_code == 404, (path, response.status_code)
        assert b"import" not in response.content and b"\"model\"" not in response.content


# ---------------------------------------------------------------------------------------------- bad input


def test_upload_over_the_size_limit_is_refused_and_nothing_kept(home, mixture, tmp_path):
    work = tmp_path / "work"
    client = _client(work, max_upload_bytes=10_000)
    data = mixture.read_bytes()
    declared = _upload(client, data, "big.wav")  # Content-Length says too much: refused before reading
    assert declared.status_code == 413
    assert "big.wav is larger than this server's upload limit of 0.0 MB" in declared.json()["error"]
    streamed = client.post("/api/jobs", params={"name": "streamed.wav", "model": "tdc-17"}, headers=PAGE,
                           content=(data[i : i + 4096] for i in range(0, len(data), 4096)))  # chunked, no length
    assert streamed.status_code == 413 and "streamed.wav" in streamed.json()["error"]
    assert list((work / "jobs").iterdir()) == []
    assert _upload(client, data[:9_000], "small.wav").status_code != 413  # under the limit: judged on content


def test_unreadable_upload_is_a_message_and_is_deleted(home, tmp_path):
    work = tmp_path / "work"
    client = _client(work)
    response = _upload(client, os.urandom(5000), "../noise.mp3")
    assert response.status_code == 400
    message = response.json()["error"]
    assert message.startswith("noise.mp3: cannot read audio") and str(work) not in message
    assert list((work / "jobs").iterdir()) == []


def test_model_without_weights_is_a_message(home, mixture, tmp_path):
    work = tmp_path / "work"
    client = _client(work)
    never = _upload(client, mixture.read_bytes(), "a.wav", model="tdf-17")
    assert never.status_code == 400 and "has no released weights" in never.json()["error"]
    not_here = _upload(client, mixture.read_bytes(), "a.wav", model="tfc-tdf-small")
    assert not_here.status_code == 400
    assert not_here.json()["error"].startswith("tfc-tdf-small:epoch891 has no weights on this machine yet")
    unknown = _upload(client, mixture.read_bytes(), "a.wav", model="no-such-model")
    assert unknown.status_code == 400 and "no-such-model" in unknown.json()["error"]
    stem = _upload(client, mixture.read_bytes(), "a.wav", stems="drums")
    assert stem.status_code == 400 and "no stem 'drums'" in stem.json()["error"]
    assert list((work / "jobs").iterdir()) == []


def test_a_full_disk_is_a_message(home, mixture, tmp_path, monkeypatch):
    work = tmp_path / "work"
    client = _client(work)
    usage = shutil.disk_usage(tmp_path)
    free = len(mixture.read_bytes()) + 1000  # room for the upload, not for what it becomes
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=free))
    response = _upload(client, mixture.read_bytes(), "clip.wav")
    assert response.status_code == 507
    need = 44100 * 2 * 4 * 2 * 2  # 1 s of stereo as two float-WAV stems, and their zip
    assert response.json()["error"] == \
        f"clip.wav: not enough disk space for its stems (about {need / 1e6:.1f} MB needed, {free / 1e6:.1f} MB free)"
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=10))
    assert _upload(client, mixture.read_bytes(), "clip.wav").status_code == 507
    assert list((work / "jobs").iterdir()) == []


def test_requests_from_elsewhere_are_refused(home, mixture, tmp_path):
    client = _client(tmp_path / "work")
    data = mixture.read_bytes()
    no_header = client.post("/api/jobs", params={"name": "a.wav", "model": "tdc-17"}, content=data)
    assert no_header.status_code == 403
    other_site = client.post("/api/jobs", params={"name": "a.wav", "model": "tdc-17"}, content=data,
                             headers={**PAGE, "Origin": "http://evil.example"})
    assert other_site.status_code == 403
    assert client.post("/api/models/tdc-17/pull").status_code == 403
    rebinding = client.get("/api/state", headers={"Host": "evil.example:7860"})
    assert rebinding.status_code == 400
    assert list((tmp_path / "work" / "jobs").iterdir()) == []


# ---------------------------------------------------------------------------------------------- binding, the extra


def test_bind_address_rule():
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert check_bind(host, allow_remote=False) is None
    for host in ("0.0.0.0", "192.168.1.20", "::", "example.org"):
        with pytest.raises(ZooError, match="add --allow-remote"):
            check_bind(host, allow_remote=False)
        assert "anyone who can reach this address" in check_bind(host, allow_remote=True)


def test_serve_refuses_a_remote_address_without_the_flag_and_warns_with_it(monkeypatch, tmp_path):
    import uvicorn

    from zoo_core.cli import main

    served = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets: served.append(sockets[0].getsockname()))
    runner = CliRunner()
    refused = runner.invoke(main, ["serve", "--host", "0.0.0.0", "--port", "0", "--work-dir", str(tmp_path)])
    assert refused.exit_code == 2 and served == []
    assert refused.stderr.strip().startswith("error: --host 0.0.0.0 would let other machines reach this server")
    allowed = runner.invoke(main, ["serve", "--host", "0.0.0.0", "--port", "0", "--allow-remote", "--work-dir", str(tmp_path)])
    assert allowed.exit_code == 0, allowed.output
    assert allowed.stderr.startswith("warning: serving on 0.0.0.0: anyone who can reach this address")
    assert allowed.stdout.strip() == f"svs-zoo serving on http://0.0.0.0:{served[0][1]}/" and served[0][0] == "0.0.0.0"
    local = runner.invoke(main, ["serve", "--port", "0", "--work-dir", str(tmp_path)])
    assert local.exit_code == 0 and "warning" not in local.stderr and served[1][0] == "127.0.0.1"
    assert local.stdout.strip() == f"svs-zoo serving on http://127.0.0.1:{served[1][1]}/"


def test_serve_without_the_extra_names_it(monkeypatch):
    from zoo_core.cli import main

    monkeypatch.setitem(__import__("sys").modules, "uvicorn", None)  # what a missing package looks like to import
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 2
    assert result.stderr == f"error: {EXTRA_HINT}\n" and "svs-zoo[serve]" in EXTRA_HINT


# ---------------------------------------------------------------------------------------------- the queue


def test_a_failing_file_does_not_stop_the_queue_and_the_stems_are_served(home, mixture, tmp_path):
    work = tmp_path / "work"
    nan = np.zeros((30_000, 2), np.float32)
    nan[20_000] = np.nan  # a header like any other; the NaN shows up while decoding
    sf.write(tmp_path / "nan.wav", nan, 44100, subtype="FLOAT")
    with _client(work) as client:
        bad = _upload(client, (tmp_path / "nan.wav").read_bytes(), "nan.wav").json()["id"]
        good = _upload(client, mixture.read_bytes(), "clip-1s.wav").json()["id"]
        state = _wait(client, _finished(2))
        jobs = {job["id"]: job for job in state["jobs"]}
        assert jobs[bad]["state"] == "failed" and jobs[bad]["error"] == "nan.wav: contains NaN or infinite samples"
        assert jobs[good]["state"] == "done" and jobs[good]["label"] == "tdc-17:top1"
        # the stems the page plays: the input's length (soundfile reads the upload's own length, 88200)
        for stem in ("vocals", "accompaniment"):
            response = client.get(f"/api/jobs/{good}/stems/{stem}")
            assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
            audio, rate = sf.read(__import__("io").BytesIO(response.content), dtype="float32")
            assert (audio.shape, rate) == ((sf.info(mixture).frames, 2), 44100)
            peaks = client.get(f"/api/jobs/{good}/peaks/{stem}").json()
            per = -(-audio.shape[0] // 1000)  # numpy's definition of the waveform: min and max per column
            assert peaks["max"] == [round(float(audio[i : i + per].max()), 4) for i in range(0, audio.shape[0], per)]
            assert peaks["min"] == [round(float(audio[i : i + per].min()), 4) for i in range(0, audio.shape[0], per)]
        statuses = [(r["input"].split("/")[-1], r["status"]) for r in _manifest(work)]
        assert statuses == [("nan.wav", "started"), ("nan.wav", "failed"), ("clip-1s.wav", "started"), ("clip-1s.wav", "done")]
        table = client.get("/api/models").json()
        row = next(r for r in table["models"] if r["name"] == "tdc-17")
        done = next(r for r in _manifest(work) if r["status"] == "done")
        assert row["speed"] == pytest.approx(done["audio_seconds"] / done["seconds"])  # the manifest's own figures
        assert row["parameters"] == 535_924  # the authors' notebook prints this count (README, The models)
        assert (row["stems"], row["cached"], table["default"]) == (["vocals", "accompaniment"], True, "tdc-17")


def test_queue_resumes_after_a_server_restart(home, mixture, clip_path, tdc17, tmp_path):
    from zoo_core.separation import separate

    work = tmp_path / "work"
    long_input = tmp_path / "long.wav"
    audio, rate = read_audio(clip_path)
    audio = audio[:, : 3 * rate]  # 3 s: three of the reader's blocks, still running when the server stops
    sf.write(long_input, audio.T, rate, subtype="FLOAT")
    with _client(work) as client:
        first = _upload(client, mixture.read_bytes(), "first.wav").json()["id"]
        second = _upload(client, long_input.read_bytes(), "long.wav").json()["id"]
        _wait(client, lambda s: s["jobs"][0]["state"] == "done" and s["jobs"][1]["progress"]["done"] > 0)
    # the server stopped mid-file: the job waits in the queue; nothing half-written remains
    assert json.loads((work / "jobs" / second / JOB_FILE).read_text())["state"] == "queued"
    assert not list((work / "jobs" / second).rglob("*.wav*"))[1:] and not list(work.rglob(".*.part*"))
    assert [r["status"] for r in _manifest(work) if r["input"].endswith("long.wav")] == ["started"]
    with _client(work) as client:
        state = _wait(client, _finished(2))
        assert [job["state"] for job in state["jobs"]] == ["done", "done"]
        assert [job["id"] for job in state["jobs"]] == [first, second]
        vocals = client.get(f"/api/jobs/{second}/stems/vocals").content
    records = _manifest(work)
    assert [r["status"] for r in records if r["input"].endswith("first.wav")] == ["started", "done"]  # not redone
    assert [r["status"] for r in records if r["input"].endswith("long.wav")] == ["started", "started", "done"]
    # the resumed file equals an uninterrupted separation of it (the engine on the whole clip in memory)
    expected = separate(tdc17, __import__("torch").from_numpy(audio), rate)["vocals"].numpy().T
    served, _ = sf.read(__import__("io").BytesIO(vocals), dtype="float32")
    np.testing.assert_allclose(served, expected, atol=1e-5)


def test_cleanup_rule(home, mixture, tmp_path):
    work = tmp_path / "work"
    with _client(work, keep_hours=1) as client:
        job = _upload(client, mixture.read_bytes(), "clip.wav").json()["id"]
        _wait(client, _finished(1))
        folder = work / "jobs" / job
        assert not (folder / "clip.wav").exists()  # rule 2: the upload goes once separated
        assert len(list(folder.rglob("*.wav"))) == 2 and client.get(f"/api/jobs/{job}/zip").status_code == 200
    queued = _client(work, keep_hours=1)  # leave one job queued (no worker runs without the lifespan)
    waiting = _upload(queued, mixture.read_bytes(), "waiting.wav").json()["id"]
    leftover = work / "jobs" / ("f" * 32)  # rule 4: an upload cut short by a kill
    leftover.mkdir()
    (leftover / ".x.wav.1234.part").write_bytes(b"partial")
    partial = work / "jobs" / waiting / "out" / ".vocals.wav.abcd.part.wav"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"partial")
    saved = json.loads((folder / JOB_FILE).read_text())
    saved["finished"] -= 2 * 3600  # finished two hours ago
    (folder / JOB_FILE).write_text(json.dumps(saved))
    restarted = _client(work, keep_hours=1)  # rule 3 at start-up: past its time, gone
    assert not folder.exists() and not leftover.exists() and not partial.exists()
    assert [j["id"] for j in restarted.get("/api/state").json()["jobs"]] == [waiting]
    assert (work / "jobs" / waiting / "waiting.wav").is_file()  # queued jobs are never cleaned up
    assert restarted.delete(f"/api/jobs/{waiting}", headers=PAGE).status_code == 204  # Remove: at once
    assert list((work / "jobs").iterdir()) == []


# ---------------------------------------------------------------------------------------------- weights


def test_pull_reports_download_progress_and_verification(weights_mirror, tmp_path, monkeypatch):
    from zoo_core.weights import pull

    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(weights_mirror))
    stages = []
    pull("tdc-17", progress=False, report=lambda stage, done, total: stages.append((stage, done, total)))
    size = (weights_mirror / "cac_tdc_17_vocals_top1.pt").stat().st_size  # the original file, read by the OS
    downloads = [(done, total) for stage, done, total in stages if stage == "download"]
    assert downloads[-1] == (size, size) and [d for d, _ in downloads] == sorted(d for d, _ in downloads)
    assert [stage for stage, _, _ in stages if stage != "download"] == ["verify", "convert"]
    with _client(tmp_path / "work") as client:
        assert client.post("/api/models/tdc-17:top2/pull", headers=PAGE).status_code == 202
        assert client.post("/api/models/tfc-tdf-17/pull", headers=PAGE).status_code == 202  # not in the mirror
        state = _wait(client, lambda s: all(s["pulls"].get(m, {}).get("state") in ("done", "failed")
                                            for m in ("tdc-17:top2", "tfc-tdf-17")))
        assert state["pulls"]["tdc-17:top2"]["state"] == "done"
        assert state["pulls"]["tdc-17:top2"]["message"] == \
            "verified: the git blob SHA-1 and SHA-256 of tdc-17:top2 match the registry"
        assert state["pulls"]["tfc-tdf-17"]["state"] == "failed"
        assert "has no cac_tfc_tdf_17_vocals_top1.pt" in state["pulls"]["tfc-tdf-17"]["message"]
        row = next(r for r in client.get("/api/models").json()["models"] if r["name"] == "tdc-17")
        assert row["cached"] and row["weights"] == "2 of 3 cached"
        refused = client.post("/api/models/tdf-17/pull", headers=PAGE)
        assert refused.status_code == 400 and "has no released weights" in refused.json()["error"]
