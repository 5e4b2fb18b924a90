"""`zoo stream --input-format` (``--format`` is `zoo separate`'s container option; the old stream spelling still
works, with a one-line notice), and 16-bit PCM sent as float named as such instead of separated as noise.

Expected values: 16-bit PCM decodes as sample / 32768 (the format's definition); the stream's output equals the
offline separation of the decoded excerpt (the stream's own contract, tested to 1e-5 in tests/test_stream.py).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from zoo_core.audio import read_audio
from zoo_core.cli import main
from zoo_core.separation import separate


def _stream(args, data: bytes, weights_mirror, tmp_path) -> subprocess.CompletedProcess:
    environment = {**os.environ, "ZOO_WEIGHTS_MIRROR": str(weights_mirror), "ZOO_HOME": str(tmp_path / "home"),
                   "ZOO_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "zoo_core.cli", "stream", "-m", "tdc-17", "-q", *args]
    return subprocess.run(command, input=data, capture_output=True, env=environment, timeout=300)


@pytest.fixture(scope="module")
def pcm16(clip_path) -> np.ndarray:
    """One second of the clip's mixture as interleaved 16-bit PCM, what ``ffmpeg -f s16le -ac 2`` sends."""
    mixture, rate = read_audio(clip_path)
    excerpt = mixture[:, 4 * rate : 5 * rate].T
    return np.round(np.clip(excerpt, -1, 1 - 2**-15) * 32768).astype("<i2")


@pytest.mark.slow
def test_input_format_reads_16_bit_pcm_and_the_old_spelling_still_works(pcm16, tdc17, weights_mirror, tmp_path):
    new = _stream(["--input-format", "s16le"], pcm16.tobytes(), weights_mirror, tmp_path)
    assert new.returncode == 0 and new.stderr == b"", new.stderr.decode()
    karaoke = np.frombuffer(new.stdout, "<f4").reshape(-1, 2)
    offline = separate(tdc17, torch.from_numpy(pcm16.T / 32768.0).float(), 44100)["accompaniment"].numpy().T
    assert karaoke.shape == pcm16.shape and np.abs(karaoke - offline).max() <= 1e-5
    old = _stream(["--format", "s16le"], pcm16.tobytes(), weights_mirror, tmp_path)
    assert old.returncode == 0 and old.stdout == new.stdout
    assert old.stderr.decode() == "warning: zoo stream --format is deprecated; use --input-format (the same values)\n"


@pytest.mark.slow
def test_16_bit_pcm_sent_as_float_is_named_in_one_line(pcm16, weights_mirror, tmp_path):
    result = _stream([], pcm16.tobytes(), weights_mirror, tmp_path)  # the default input format is f32le
    assert result.returncode == 2 and result.stdout == b""
    assert result.stderr.decode() == ("error: standard input: not plausible f32le audio (NaN, infinite or beyond "
                                      "±1000); for 16-bit PCM pass --input-format s16le, or send WAV\n")


def test_only_input_format_is_shown_and_both_spellings_at_once_are_refused(weights_mirror, monkeypatch):
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(weights_mirror))
    monkeypatch.setattr(os, "isatty", lambda fd: False)
    shown = CliRunner().invoke(main, ["stream", "--help"]).output
    assert "--input-format [f32le|s16le]" in shown and "--format" not in shown.replace("--input-format", "").replace(
        "--output-format", "")
    both = CliRunner().invoke(main, ["stream", "--input-format", "s16le", "--format", "s16le"])
    assert both.exit_code == 2 and both.stderr == "error: --format is the old name of --input-format; give only --input-format\n"
