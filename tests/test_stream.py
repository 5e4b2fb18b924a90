"""Live separation: the stream is the offline separation delayed by a fixed latency (real clip, random block
sizes), its state stays bounded, and `zoo stream` pipes raw PCM and WAV from standard input to standard output."""

from __future__ import annotations

import os
import subprocess
import sys
import wave

import numpy as np
import pytest
import soxr
import torch
from click.testing import CliRunner

from zoo_core.audio import read_audio
from zoo_core.errors import ZooError
from zoo_core.separation import SeparationSettings, separate
from zoo_core.stream import StreamingSeparator, options_for_latency, stream_latency


def _random_blocks(audio: np.ndarray, seed: int, largest: int):
    """``[frames, channels]`` cut at random: single frames, a few hundred, and blocks longer than a segment."""
    rng = np.random.default_rng(seed)
    start = 0
    while start < audio.shape[0]:
        size = int(rng.choice([rng.integers(1, 64), rng.integers(64, 4096), rng.integers(4096, largest)]))
        yield audio[start : start + size]
        start += size


def _stream(separator: StreamingSeparator, blocks) -> dict[str, np.ndarray]:
    """Push every block (checking each returns as many frames), flush, and concatenate."""
    pieces = []
    for block in blocks:
        out = separator.push(block)
        assert {stem: part.shape for stem, part in out.items()} == {stem: block.shape for stem in separator.stems}
        pieces.append(out)
    tail = separator.flush()
    assert {part.shape[0] for part in tail.values()} == {separator.latency}
    pieces.append(tail)
    return {stem: np.concatenate([piece[stem] for piece in pieces]) for stem in separator.stems}


def test_stream_is_the_offline_separation_delayed_by_its_latency(tdc17, clip_path):
    mixture, rate = read_audio(clip_path)  # the whole clip, 44.1 kHz stereo: the model's own rate
    separator = StreamingSeparator(tdc17, rate, channels=2)
    segment, _ = SeparationSettings().geometry(tdc17)
    assert separator.latency == segment - 1  # 64511 frames, 1.463 s
    streamed = _stream(separator, _random_blocks(mixture.T, seed=0, largest=3 * segment))
    offline = separate(tdc17, torch.from_numpy(mixture), rate)
    for stem in ("vocals", "accompaniment"):
        assert not streamed[stem][: separator.latency].any()  # the stream opens with one latency of silence
        delayed = streamed[stem][separator.latency :].T
        assert delayed.shape == mixture.shape
        assert np.abs(delayed - offline[stem].numpy()).max() <= 1e-5, stem


def test_resampled_mono_stream_with_a_latency_budget(tdc17, clip_path):
    mixture, rate = read_audio(clip_path)
    mono = soxr.resample(mixture[:, 4 * rate : 6 * rate].mean(axis=0), rate, 48000, "HQ").astype(np.float32)[:, None]
    options = options_for_latency(tdc17, 0.5, 48000, SeparationSettings())
    separator = StreamingSeparator(tdc17, 48000, channels=1, options=options)
    assert separator.latency <= 0.5 * 48000
    longer = SeparationSettings(options.segment + tdc17.hop_length / tdc17.sample_rate, options.overlap)
    assert stream_latency(tdc17, 48000, longer) > 0.5 * 48000  # the longest segment that fits was chosen
    streamed = _stream(separator, _random_blocks(mono, seed=1, largest=20_000))
    offline = separate(tdc17, torch.from_numpy(mono.T.copy()), 48000, segment=options.segment, overlap=options.overlap)
    assert np.abs(streamed["vocals"][separator.latency :].T - offline["vocals"].numpy()).max() <= 1e-5


class _Identity(torch.nn.Module):
    """A model that returns its input as the vocals: cheap enough to stream ten minutes through."""

    sample_rate = 44100
    hop_length = 1024
    stems = ["vocals"]

    def forward(self, mixture):
        return mixture.unsqueeze(1)


def test_state_stays_bounded_over_a_long_stream():
    options = SeparationSettings(segment=8 * 1024 / 44100, overlap=0.25)
    separator = StreamingSeparator(_Identity(), 48000, channels=2, options=options)  # resampling both ways
    rng = np.random.default_rng(2)
    held = []
    for _ in range(2000):  # about seven minutes in blocks of up to 0.2 s
        block = rng.standard_normal((int(rng.integers(1, 19200)), 2)).astype(np.float32)
        assert separator.push(block)["vocals"].shape == block.shape
        held.append(separator.held_frames())
    segment = 8 * 1024 * 48000 // 44100  # in input frames
    assert max(held) < 2 * segment + separator.latency + 2 * 19200  # a bound that does not depend on the length
    assert np.mean(held[-500:]) < 1.05 * np.mean(held[100:600])  # and no drift from the first minute to the last


def test_batched_segments_add_their_strides_to_the_latency():
    audio = np.random.default_rng(4).standard_normal((200_000, 2)).astype(np.float32)
    for batch in (1, 3):
        options = SeparationSettings(segment=8 * 1024 / 44100, overlap=0.25, batch_size=batch)
        separator = StreamingSeparator(_Identity(), 44100, channels=2, options=options)
        assert separator.latency == 8 * 1024 + (batch - 1) * 6 * 1024 - 1  # segment + (batch - 1) * stride - 1
        out = _stream(separator, _random_blocks(audio, seed=batch, largest=30_000))["vocals"]
        assert np.abs(out[separator.latency :] - audio).max() <= 1e-6  # the input, exactly one latency later


def test_latency_below_two_hops_and_pushing_after_flush_are_refused(tdc17):
    with pytest.raises(ZooError, match="minimum of 0.046 s"):
        options_for_latency(tdc17, 0.01, 44100, SeparationSettings())
    separator = StreamingSeparator(tdc17, 44100, channels=2, options=options_for_latency(tdc17, 0.1, 44100, SeparationSettings()))
    with pytest.raises(ZooError, match="\\[frames, 2\\]"):
        separator.push(np.zeros((10, 1), np.float32))
    separator.flush()
    with pytest.raises(ZooError, match="already flushed"):
        separator.push(np.zeros((10, 2), np.float32))


# ----------------------------------------------------------------------------------------------- zoo stream


def _zoo_stream(args, stdin, weights_mirror, tmp_path, **popen):
    environment = {**os.environ, "ZOO_WEIGHTS_MIRROR": str(weights_mirror), "ZOO_HOME": str(tmp_path / "home"),
                   "ZOO_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "zoo_core.cli", "stream", *args]
    return subprocess.Popen(command, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment, **popen)


@pytest.mark.slow
def test_zoo_stream_pipes_raw_float_pcm_like_the_readme_example(tdc17, clip_path, weights_mirror, tmp_path):
    mixture, rate = read_audio(clip_path)
    excerpt = np.ascontiguousarray(mixture[:, 4 * rate : 6 * rate].T)  # what `ffmpeg -f f32le -ac 2` sends
    process = _zoo_stream(["-m", "tdc-17"], subprocess.PIPE, weights_mirror, tmp_path)
    out, err = process.communicate(excerpt.astype("<f4").tobytes(), timeout=300)
    assert process.returncode == 0, err.decode()
    assert err.decode().count("\n") == 1 and "latency 1.463 s" in err.decode()  # one start-up line, on stderr
    karaoke = np.frombuffer(out, "<f4").reshape(-1, 2)  # aligned with the input: as many frames
    offline = separate(tdc17, torch.from_numpy(excerpt.T.copy()), rate)["accompaniment"].numpy().T
    assert karaoke.shape == excerpt.shape
    assert np.abs(karaoke - offline).max() <= 1e-5


@pytest.mark.slow
def test_zoo_stream_reads_a_wav_stream_and_interleaves_two_stems(clip_path, weights_mirror, tmp_path):
    mixture, rate = read_audio(clip_path)
    mono = soxr.resample(mixture[:, 4 * rate : 5 * rate].mean(axis=0), rate, 48000, "HQ")
    samples = np.round(np.clip(mono, -1, 1 - 2**-15) * 32768).astype("<i2")
    source = tmp_path / "mono.wav"
    with wave.open(str(source), "wb") as handle:  # 16-bit PCM, 48 kHz, mono: rate and channels from the header
        handle.setnchannels(1), handle.setsampwidth(2), handle.setframerate(48000)
        handle.writeframes(samples.tobytes())
    with open(source, "rb") as stdin:
        process = _zoo_stream(["--stems", "vocals,accompaniment", "--output-format", "s16le", "--latency", "0.3", "-q"],
                              stdin, weights_mirror, tmp_path)
        out, err = process.communicate(timeout=300)
    assert process.returncode == 0 and err == b"", err.decode()
    stems = np.frombuffer(out, "<i2").reshape(-1, 2).astype(np.int32)  # [vocals, accompaniment] per frame
    assert stems.shape[0] == samples.shape[0]
    # accompaniment = mixture - vocals, each rounded to 16 bits once
    assert np.abs(stems.sum(axis=1) - samples).max() <= 2


@pytest.mark.slow
def test_zoo_stream_ends_quietly_when_its_reader_goes_away(weights_mirror, tmp_path):
    source = tmp_path / "noise.f32"
    source.write_bytes((np.random.default_rng(3).standard_normal((10 * 44100, 2)) * 0.1).astype("<f4").tobytes())
    with open(source, "rb") as stdin:
        process = _zoo_stream(["--latency", "0.1", "-q"], stdin, weights_mirror, tmp_path)
        assert len(process.stdout.read(4096)) == 4096
        process.stdout.close()  # like a player that quits
        returncode = process.wait(timeout=300)
        err = process.stderr.read()
    assert returncode == 0 and err == b"", err.decode()


def test_zoo_stream_refuses_bad_options_in_one_line(weights_mirror, monkeypatch):
    from zoo_core.cli import main

    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(weights_mirror))
    monkeypatch.setattr(os, "isatty", lambda fd: False)  # as in a pipe, whatever runs the tests
    for args, message in [
        (["--latency", "0.5", "--segment", "1"], "give one of them"),
        (["--channels", "6"], "only mono and stereo"),
        (["--stems", "drums"], "no stem 'drums'"),
        (["--method", "authors"], "No such option"),
    ]:
        result = CliRunner().invoke(main, ["stream", *args])
        assert result.exit_code == 2, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and message in result.stderr, (args, result.stderr)
