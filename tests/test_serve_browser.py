"""`zoo serve` in a real browser: `zoo serve` runs as its own process, headless Chromium (Debian's package, driven
by Playwright's Python client) uses the page as a person would: get tdc-17's weights, drop the real clip and a
garbage file, pick tdc-17, start, follow the progress, play and download.

Without Playwright or Chromium these tests fail and say what to install: they never skip (scripts/setup.sh
installs both). Screenshots of each state go to test-artifacts/serve/ (CI keeps that folder).
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "serve"
CHROMIUM = Path(os.environ.get("ZOO_CHROMIUM", "/usr/bin/chromium"))
# headless, and none of the browser's own traffic (updates, sync, QUIC probes): this machine has no network
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ZOO = [sys.executable, "-m", "zoo_core.cli"]


def _playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the browser tests need Playwright's Python client: pip install -e '.[test]' (scripts/setup.sh)")
    if not CHROMIUM.is_file():
        pytest.fail(f"the browser tests need Chromium at {CHROMIUM}: apt-get install chromium (scripts/setup.sh "
                    "does it as root), or set ZOO_CHROMIUM to a Chromium binary")
    return sync_playwright


def _decoded_frames(path: Path) -> int:
    """The input's length as the ffmpeg command line decodes it (stream 0, the mixture): an independent count."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0", "-f", "f32le", "-ac", "2", "-"],
                         check=True, capture_output=True).stdout
    return len(raw) // 8


@pytest.fixture
def server(tmp_path, weights_mirror):
    """`zoo serve --port 0` in its own process over an empty cache; yields (URL, its environment)."""
    # the server and `zoo separate` below share this environment (thread count included), so they compute alike
    env = {**os.environ, "ZOO_HOME": str(tmp_path / "home"), "ZOO_WEIGHTS_MIRROR": str(weights_mirror)}
    log = open(tmp_path / "server.log", "w")
    process = subprocess.Popen([*ZOO, "serve", "--port", "0", "--work-dir", str(tmp_path / "work")], env=env,
                               stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        line = process.stdout.readline()  # the URL, once the socket listens
        match = re.fullmatch(r"svs-zoo serving on (http://127\.0\.0\.1:\d+/)\n", line)
        assert match, f"zoo serve printed {line!r}; its log: {(tmp_path / 'server.log').read_text()}"
        yield match.group(1), env
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()


def test_the_page_separates_the_clip_in_a_real_browser(server, clip_path, tmp_path):
    sync_playwright = _playwright()
    url, env = server
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    garbage = tmp_path / "not-audio.mp3"
    garbage.write_bytes(np.random.default_rng(0).bytes(20_000))
    frames = _decoded_frames(clip_path)
    # `zoo separate` on the same clip, meanwhile, with its own cache (the page must find no weights cached)
    cli_out, cli_log = tmp_path / "cli", open(tmp_path / "cli.log", "w")
    cli = subprocess.Popen([*ZOO, "separate", str(clip_path), "-m", "tdc-17", "-o", str(cli_out), "-q"],
                           env={**env, "ZOO_HOME": str(tmp_path / "cli-home")}, stdout=cli_log, stderr=cli_log)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1100, "height": 900}, accept_downloads=True)
        try:
            page = browser.new_page()
            page_errors: list[str] = []
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            # console errors other than the refused upload's HTTP status: a CSP violation would show up here
            page.on("console", lambda message: message.type == "error" and "Failed to load resource" not in
                    message.text and page_errors.append(message.text))
            page.goto(url)
            row = page.locator("tr[data-model='tdc-17']")
            row.wait_for(timeout=120_000)
            page.screenshot(path=ARTIFACTS / "1-empty.png", full_page=True)

            # the weights, from the page: download progress, then the verification's result
            row.get_by_role("button", name="Get the weights of tdc-17").click()
            row.locator(".pull-done").wait_for(timeout=60_000)
            assert row.locator(".pull-done").inner_text() == \
                "verified: the git blob SHA-1 and SHA-256 of tdc-17:top1 match the registry"
            assert row.locator(".weights").inner_text().startswith("✓ 1 of 3 cached")

            page.check("#model-tdc-17")
            _drop_lists_the_file(page)
            page.set_input_files("#file-input", [str(clip_path), str(garbage)])
            page.click("#start")
            progress = _follow_progress(page)
            assert any(0 < value < 1 for value in progress), f"no progress between 0 and 1 was shown: {progress}"
            assert progress == sorted(progress)

            # the garbage file: a message in the page, and the queue went on
            message = page.locator("#messages")
            message.wait_for(timeout=60_000)
            assert message.inner_text().startswith("not-audio.mp3: cannot read audio")
            page.locator(".job.state-done").wait_for(timeout=120_000)
            page.locator(".job.state-done audio").nth(1).wait_for()  # (no wait_for_function: the page's CSP forbids eval)
            page.screenshot(path=ARTIFACTS / "3-done.png", full_page=True)
            message.screenshot(path=ARTIFACTS / "4-error.png")

            # every stem plays: the browser decodes it at the input's length
            stems = page.evaluate(PLAYED)
            assert sorted(s["stem"] for s in stems) == ["accompaniment", "vocals"]
            for stem in stems:
                assert (stem["length"], stem["rate"], stem["channels"]) == (frames, 44100, 2), stem
                assert stem["duration"] == pytest.approx(frames / 44100, abs=1e-6), stem
                assert stem["painted"] > 0, f"no waveform drawn for {stem['stem']}"

            with page.expect_download() as single:
                page.locator("figure[data-stem='vocals'] a[download]").click()
            vocals = Path(single.value.path()).read_bytes()
            with page.expect_download() as bundle:
                page.locator(".job.state-done a.zip").click()
            archive = zipfile.ZipFile(bundle.value.path())
            _pull_progress_is_drawn(page)
            assert page_errors == []
        finally:
            browser.close()

    # the zip holds what `zoo separate` writes for the same clip, sample for sample
    assert cli.wait(timeout=300) == 0, (tmp_path / "cli.log").read_text()
    written = sorted(str(p.relative_to(cli_out)) for p in cli_out.rglob("*.wav"))
    assert sorted(archive.namelist()) == written == [
        "tdc-17_top1/The Easton Ellises - Falcon 69/accompaniment.wav", "tdc-17_top1/The Easton Ellises - Falcon 69/vocals.wav"]
    for name in written:
        served, served_rate = sf.read(io.BytesIO(archive.read(name)), dtype="float32")
        expected, expected_rate = sf.read(cli_out / name, dtype="float32")
        assert served_rate == expected_rate and np.array_equal(served, expected), name
    assert vocals == archive.read(written[1])


def _drop_lists_the_file(page) -> None:
    """A file dropped on the drop zone joins the list of files to separate (and can be taken off it again)."""
    from playwright.sync_api import expect

    files = page.evaluate_handle(
        "() => { const t = new DataTransfer(); t.items.add(new File(['RIFF'], 'dropped.wav')); return t; }")
    page.dispatch_event("#drop", "drop", {"dataTransfer": files})
    chosen = page.locator("#chosen li")
    expect(chosen).to_have_count(1)
    assert chosen.locator(".file-name").inner_text() == "dropped.wav"
    chosen.get_by_role("button", name="Remove dropped.wav from the list").click()
    expect(chosen).to_have_count(0)


def _pull_progress_is_drawn(page) -> None:
    """How the page draws a pull's stages. The mirror's copy above is over before the page polls again, so the
    server's state is replaced here by one taken mid-download (the values `pull`'s report gives; the API test
    checks those)."""
    import json

    from playwright.sync_api import expect

    state = page.evaluate("() => fetch('/api/state').then((r) => r.json())")
    state["version"] += 1
    state["pulls"]["tfc-tdf-17"] = {"state": "download", "done": 1_000_000, "total": 2_300_000, "message": ""}
    page.route("**/api/state", lambda route: route.fulfill(status=200, content_type="application/json",
                                                          body=json.dumps(state)))
    row = page.locator("tr[data-model='tfc-tdf-17']")
    row.locator("progress").wait_for(timeout=10_000)
    assert row.locator(".pull-state").inner_text() == "downloading 1 MB of 2.3 MB"
    assert row.locator("progress").evaluate("p => p.value") == pytest.approx(1 / 2.3)
    row.screenshot(path=ARTIFACTS / "5-pull-progress.png")
    state["version"] += 1
    state["pulls"]["tfc-tdf-17"] = {"state": "verify", "done": 2_300_000, "total": 2_300_000, "message": ""}
    expect(row.locator(".pull-state")).to_have_text("verifying the file's hashes…", timeout=10_000)
    page.unroute("**/api/state")


def _follow_progress(page, timeout: float = 120.0) -> list[float]:
    """The clip's progress bar as the page shows it, sampled until the job is done; a screenshot on the way."""
    values: list[float] = []
    shot = False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = page.evaluate(
            "() => { const job = document.querySelector('.job'); return job && "
            "{ state: job.className, value: job.querySelector('progress').value } }")
        if state and "state-running" in state["state"]:
            values.append(state["value"])
            if 0 < state["value"] < 1 and not shot:
                page.screenshot(path=ARTIFACTS / "2-progress.png", full_page=True)
                shot = True
        if state and "state-done" in state["state"]:
            return values
        time.sleep(0.05)
    raise AssertionError(f"the job did not finish in {timeout} s; progress seen: {values}")


# every audio element of the page: its duration once loaded, and its file decoded by the browser at the file's
# rate (no resampling: the length is the file's own), and how many pixels of its waveform were painted
PLAYED = """async () => Promise.all([...document.querySelectorAll('.job.state-done figure.stem')].map(async (figure) => {
  const audio = figure.querySelector('audio');
  if (audio.readyState < 1) await new Promise((done) => audio.addEventListener('loadedmetadata', done, { once: true }));
  const bytes = await (await fetch(audio.currentSrc)).arrayBuffer();
  const decoded = await new OfflineAudioContext(2, 1, 44100).decodeAudioData(bytes);
  const canvas = figure.querySelector('canvas');
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
  return { stem: figure.dataset.stem, duration: audio.duration, length: decoded.length,
           rate: decoded.sampleRate, channels: decoded.numberOfChannels, painted };
}))"""
