"""`zoo demo`: offline with the weights mirror, on the clip stempeg ships, with a real SDR."""

from __future__ import annotations

import hashlib
import importlib.util
import re

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from zoo_core.audio import read_stems
from zoo_core.cli import main
from zoo_core.demo import find_demo_clip
from zoo_core.errors import ZooError
from zoo_core.metrics import sdr

# svs-zoo's default overlap-add, tdc-17 top1, stream-0 mixture: median vocal SDR on the clip (README; regression)
OVERLAP_ADD_CLIP_SDR = 1.806


def test_the_clip_is_found_in_the_stempeg_package(clip_path):
    clip = find_demo_clip()
    assert clip.parent.name == "data" and clip.parent.parent.name == "stempeg"
    assert hashlib.sha256(clip.read_bytes()).digest() == hashlib.sha256(clip_path.read_bytes()).digest()


def test_without_stempeg_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ZooError, match="pip install stempeg"):
        find_demo_clip()


@pytest.mark.slow
def test_demo_runs_offline_and_prints_the_sdr_of_what_it_wrote(weights_mirror, clip_path, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(weights_mirror))
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    result = CliRunner().invoke(main, ["demo", "-o", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert "tdc-17:top1" in result.stdout
    assert re.search(r"time\s+\d+\.\d s separation", result.stdout)
    printed = {
        stem: float(re.search(rf"{stem} SDR\s+(-?\d+\.\d+) dB", result.stdout).group(1))
        for stem in ("vocals", "accompaniment")
    }
    # the printed SDRs are those of the files written, against the clip's true stems (median over 1-s frames)
    stems, _ = read_stems(clip_path)
    truth = {"vocals": stems["vocals"], "accompaniment": stems["drums"] + stems["bass"] + stems["other"]}
    folder = tmp_path / "tdc-17_top1" / "The Easton Ellises - Falcon 69"
    for stem in ("vocals", "accompaniment"):
        info = sf.info(folder / f"{stem}.wav")
        assert (info.samplerate, info.channels, info.frames) == (44100, 2, 268_288)
        written = sf.read(folder / f"{stem}.wav", dtype="float32", always_2d=True)[0]
        frames = sdr(truth[stem].T[None], written[None])[0]
        assert printed[stem] == pytest.approx(np.median(frames[np.isfinite(frames)]), abs=0.005 + 1e-9), stem
    # svs-zoo's own figure for the default overlap-add (README; a regression value, see test_separate.py)
    assert printed["vocals"] == pytest.approx(OVERLAP_ADD_CLIP_SDR, abs=0.005)
    assert printed["accompaniment"] > printed["vocals"]
