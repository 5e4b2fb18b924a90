"""`zoo demo`: offline with the weights mirror, on the clip stempeg ships, with a real SDR."""

from __future__ import annotations

import hashlib
import importlib.util
import re

import pytest
import soundfile as sf
from click.testing import CliRunner

from zoo_core.cli import main
from zoo_core.demo import find_demo_clip
from zoo_core.errors import ZooError

AUTHORS_CLIP_SDR = 1.9342  # the authors' own code, tdc-17 top1, stream-0 mixture


def test_the_clip_is_found_in_the_stempeg_package(clip_path):
    clip = find_demo_clip()
    assert clip.parent.name == "data" and clip.parent.parent.name == "stempeg"
    assert hashlib.sha256(clip.read_bytes()).digest() == hashlib.sha256(clip_path.read_bytes()).digest()


def test_without_stempeg_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ZooError, match="pip install stempeg"):
        find_demo_clip()


@pytest.mark.slow
def test_demo_runs_offline_and_prints_a_real_sdr(weights_mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(weights_mirror))
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    result = CliRunner().invoke(main, ["demo", "-o", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert "tdc-17:top1" in result.stdout
    vocals = float(re.search(r"vocals SDR\s+(-?\d+\.\d+) dB", result.stdout).group(1))
    accompaniment = float(re.search(r"accompaniment SDR\s+(-?\d+\.\d+) dB", result.stdout).group(1))
    assert abs(vocals - AUTHORS_CLIP_SDR) <= 0.2 and accompaniment > vocals
    assert re.search(r"time\s+\d+\.\d s separation", result.stdout)
    folder = tmp_path / "tdc-17_top1" / "The Easton Ellises - Falcon 69"
    for stem in ("vocals", "accompaniment"):
        info = sf.info(folder / f"{stem}.wav")
        assert (info.samplerate, info.channels, info.frames) == (44100, 2, 268_288)
