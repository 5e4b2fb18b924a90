"""What separation writes: the karaoke track (accompaniment = mixture - vocals) of every model with a vocals
stem, four-stem ones included, in `zoo separate` and `zoo stream`; MP3 outputs (LAME, 320 kbps, as demucs)."""

from __future__ import annotations

import av
import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

import zoo_core
from zoo_core.audio import read_audio
from zoo_core.cli import main
from zoo_core.cli.stream import stream_stems
from zoo_core.errors import ZooError
from zoo_core.separation import separate_file
from zoo_core.stream import StreamingSeparator

FOUR = ["vocals", "bass", "drums", "other"]
DEMUCS_MP3_BITRATE = 320_000  # demucs' --mp3-bitrate default (320 kbps), what its users expect


@pytest.fixture(scope="module")
def four_stem_model():
    """tfc-tdf-v3-small (four stems) with seeded parameters: no weights are released for it."""
    torch.manual_seed(0)
    return zoo_core.load("tfc-tdf-v3-small", init=True).eval()


@pytest.fixture(scope="module")
def clip_wav(clip_path, tmp_path_factory):
    """Two seconds of the real clip's mixture (4-6 s, with singing) as a float WAV."""
    mixture, rate = read_audio(clip_path)
    path = tmp_path_factory.mktemp("clip") / "falcon.wav"
    sf.write(path, mixture[:, 4 * rate : 6 * rate].T, rate, subtype="FLOAT")
    return path


def _read(path) -> np.ndarray:
    return sf.read(path, dtype="float32", always_2d=True)[0]


def test_a_four_stem_model_writes_its_accompaniment_when_asked(four_stem_model, clip_wav, tmp_path):
    assert four_stem_model.stems == FOUR
    default = separate_file(four_stem_model, clip_wav, tmp_path / "default")
    assert list(default.outputs) == FOUR  # by default the model's own stems, as before

    chosen = separate_file(four_stem_model, clip_wav, tmp_path / "karaoke", stems=["accompaniment", "vocals"])
    assert list(chosen.outputs) == ["vocals", "accompaniment"]  # in the model's order
    mixture, vocals, accompaniment = _read(clip_wav), _read(chosen.outputs["vocals"]), _read(chosen.outputs["accompaniment"])
    assert accompaniment.shape == mixture.shape == vocals.shape
    # the definition, from the files as written (float WAV: exact up to float32 rounding of the subtraction)
    np.testing.assert_allclose(accompaniment, mixture - vocals, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(vocals, _read(default.outputs["vocals"]))  # the same vocals either way
    assert np.abs(vocals).max() > 1e-3  # a real estimate, not silence


def test_stems_a_model_cannot_give_are_named_in_one_line(four_stem_model, clip_wav, tmp_path):
    with pytest.raises(ZooError, match=r"no stem 'instrumental' in this model \(it gives vocals, bass, drums, "
                                       r"other, accompaniment\)"):
        separate_file(four_stem_model, clip_wav, tmp_path, stems=["instrumental"])


def test_zoo_stream_defaults_to_the_karaoke_track_of_every_model_with_vocals(four_stem_model):
    class NoVocals:
        stems = ["drums", "bass"]

    assert stream_stems(four_stem_model, None) == ["accompaniment"]
    assert stream_stems(zoo_core.load("tdf-17", init=True), None) == ["accompaniment"]
    assert stream_stems(NoVocals(), None) == ["drums"]  # nothing to subtract: the first stem
    assert stream_stems(four_stem_model, ["drums", "accompaniment"]) == ["drums", "accompaniment"]


def test_the_stream_of_a_four_stem_model_carries_its_accompaniment(four_stem_model, clip_wav):
    mixture = _read(clip_wav)[: 3 * 4096 + 77]
    separator = StreamingSeparator(four_stem_model, 44100, 2)
    parts = [separator.push(mixture[i : i + 4096]) for i in range(0, mixture.shape[0], 4096)] + [separator.flush()]
    out = {stem: np.concatenate([part[stem] for part in parts]) for stem in ("vocals", "accompaniment")}
    # output frame t is the estimate of input frame t - latency (silence before the stream starts)
    delayed = np.concatenate([np.zeros((separator.latency, 2), np.float32), mixture])[: out["vocals"].shape[0]]
    np.testing.assert_allclose(out["accompaniment"], delayed - out["vocals"], rtol=0, atol=1e-6)


def test_mp3_output_is_lame_at_320_kbps_and_decodes_to_the_wav_output(weights_mirror, clip_wav, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(weights_mirror))
    runner = CliRunner()
    for fmt in ("wav", "mp3"):
        result = runner.invoke(main, ["separate", str(clip_wav), "-o", str(tmp_path / fmt), "--format", fmt, "-q"])
        assert result.exit_code == 0, result.output
    folder = tmp_path / "mp3" / "tdc-17_top1" / "falcon"
    assert sorted(p.name for p in folder.iterdir()) == ["accompaniment.mp3", "vocals.mp3"]
    with av.open(str(folder / "vocals.mp3")) as container:  # the container says what encoded it
        stream = container.streams.audio[0]
        assert (stream.codec_context.name, stream.bit_rate, stream.rate) == ("mp3float", DEMUCS_MP3_BITRATE, 44100)
        assert container.format.name == "mp3"
    for stem in ("vocals", "accompaniment"):
        lossless = _read(tmp_path / "wav" / "tdc-17_top1" / "falcon" / f"{stem}.wav")
        decoded = _read(folder / f"{stem}.mp3")  # libsndfile's own MP3 decoder, not the encoder's library
        assert decoded.shape == lossless.shape  # LAME's header gives back the exact length (gapless)
        # 320 kbps MP3 of this music: the coding noise is far below the signal (measured: 43.8 dB vocals, 40.6 dB
        # accompaniment)
        snr = 10 * np.log10(np.sum(lossless**2) / np.sum((decoded - lossless) ** 2))
        assert snr > 30, f"{stem}: {snr:.1f} dB"


def test_mp3_refuses_what_it_cannot_store_in_one_line(weights_mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(weights_mirror))
    source = tmp_path / "hires.wav"
    sf.write(source, np.zeros((9600, 2), np.float32), 96000, subtype="FLOAT")
    runner = CliRunner()
    result = runner.invoke(main, ["separate", str(source), "-o", str(tmp_path / "out"), "--format", "mp3", "-q",
                                  "--json"])
    assert result.exit_code != 0
    assert "mp3 cannot store 96000 Hz" in result.stderr and "Traceback" not in result.output
    result = runner.invoke(main, ["separate", str(source), "--format", "mp3", "--bits", "24"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == ["error: --bits applies to wav and flac; mp3 is written at 320 kbps"]
