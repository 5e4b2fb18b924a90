"""`zoo eval` on MUSDB layouts built from the real clip: museval JSON, the SiSEC aggregate, plots, bad layouts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import museval
import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from zoo_core.audio import MUSDB_STEMS, read_stems
from zoo_core.cli import main
import zoo_core
from zoo_core.evaluate import aggregate, track_summary
from zoo_core.separation import separate


@pytest.fixture
def zoo(weights_mirror, monkeypatch):
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(weights_mirror))
    runner = CliRunner()
    return lambda *args: runner.invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def clip_stems(clip_path):
    return read_stems(clip_path)[0]


def _hq_track(folder, stems, start_s: float, stop_s: float):
    """A MUSDB18-HQ track folder holding a slice of the clip's five streams."""
    folder.mkdir(parents=True)
    for name in MUSDB_STEMS:
        audio = stems[name][:, int(start_s * 44100) : int(stop_s * 44100)]
        sf.write(folder / f"{name}.wav", audio.T, 44100, subtype="FLOAT")
    return folder


@pytest.mark.slow
def test_musdb_hq_layout_prints_the_aggregate_and_writes_museval_json(zoo, tmp_path, clip_stems):
    root = tmp_path / "musdb18hq"
    _hq_track(root / "test" / "A - first", clip_stems, 0.0, 2.5)
    _hq_track(root / "test" / "B - second", clip_stems, 3.5, 6.0)
    result = zoo("eval", "--musdb", root, "-o", tmp_path / "results", "-q")
    assert result.exit_code == 0, result.stderr
    table = result.stdout
    assert "2 track(s)" in table and "median over 1-s frames per track, then median over tracks" in table
    rows = {line.split()[1]: line for line in table.splitlines() if line.split()[1:2] in (["vocals"], ["accompaniment"])}
    assert set(rows) == {"vocals", "accompaniment"}
    documents = {}
    for track in ("A - first", "B - second"):
        document = json.loads((tmp_path / "results" / "test" / f"{track}.json").read_text())
        assert [t["name"] for t in document["targets"]] == ["vocals", "accompaniment"]
        assert len(document["targets"][0]["frames"]) == 2  # 2.5 s: two whole 1-s frames
        assert set(document["targets"][0]["frames"][0]["metrics"]) == {"SDR", "SIR", "ISR", "SAR"}
        documents[track] = {
            t["name"]: {m: [f["metrics"][m] for f in t["frames"]] for m in ("SDR", "SIR", "ISR", "SAR")}
            for t in document["targets"]
        }
    # the printed table is the median over tracks of the per-track frame medians of museval's numbers
    expected = aggregate([track_summary(scores) for scores in documents.values()])
    vocals_row = rows["vocals"].replace("│", " ").split()
    assert float(vocals_row[1]) == pytest.approx(expected["vocals"]["SDR"], abs=1e-3)


@pytest.mark.slow
def test_stem_file_layout_sdr_only_json_and_plot(zoo, tmp_path, clip_path, clip_stems):
    root = tmp_path / "musdb18"
    (root / "test").mkdir(parents=True)
    (root / "test" / clip_path.name).symlink_to(clip_path)
    result = zoo("eval", "--musdb", root, "--sdr-only", "--json", "--plot", "-o", tmp_path / "results", "-q")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert "median over tracks" in document["aggregation"] and "stream 0" in document["mixture"]
    (track,) = document["tracks"]
    vocals = track["median_over_frames"]["vocals"]["SDR"]
    # the score of the default separation of the stream-0 mixture, by museval's own code (independent of
    # svs-zoo's fast SDR); --method authors reproducing the authors' figure is in test_reproduce.py
    estimate = separate(zoo_core.load("tdc-17", device="cpu", precision="fp32"), torch.from_numpy(clip_stems["mixture"]), 44100)
    frames = museval.evaluate(clip_stems["vocals"].T[None].astype(np.float64),
                              estimate["vocals"].numpy().T[None].astype(np.float64), win=44100, hop=44100)[0][0]
    assert vocals == pytest.approx(np.median(frames[np.isfinite(frames)]), abs=1e-6)
    assert document["aggregate"]["vocals"] == {"SDR": vocals}
    assert track["median_over_frames"]["accompaniment"]["SDR"] > vocals  # the easier target here
    written = json.loads(open(track["json"]).read())
    assert [len(t["frames"]) for t in written["targets"]] == [6, 6]
    image = plt_imread(track["plot"])
    assert image.shape[0] > 500 and image.shape[1] > 500 and image[..., :3].std() > 0.05


def plt_imread(path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.imread(path)


def test_wrong_layouts_and_bad_tracks_are_one_line_errors(zoo, tmp_path, clip_stems):
    (tmp_path / "empty-root").mkdir()
    flat = tmp_path / "flat"
    (flat / "test").mkdir(parents=True)
    (flat / "test" / "song.wav").write_bytes(b"RIFF")
    for root, problem in [(tmp_path / "empty-root", "no test/ folder"), (flat, "no tracks found"), (tmp_path / "nowhere", "not a folder")]:
        result = zoo("eval", "--musdb", root, "--sdr-only")
        assert result.exit_code == 2 and result.stderr.count("\n") == 1 and problem in result.stderr, result.stderr
    incomplete = _hq_track(tmp_path / "incomplete", clip_stems, 0.0, 1.5)
    (incomplete / "bass.wav").unlink()
    good = _hq_track(tmp_path / "good", clip_stems, 0.0, 2.2)
    result = zoo("eval", good, incomplete, tmp_path / "missing.stem.mp4", "--sdr-only", "-q")
    assert result.exit_code == 2
    assert "missing bass.wav" in result.stderr and "missing.stem.mp4: no such file" in result.stderr
    assert "1 track(s)" in result.stdout  # the good track is still scored
    neither = zoo("eval", "--sdr-only")
    assert neither.exit_code == 2 and "TRACKS or --musdb" in neither.stderr


def test_missing_ffmpeg_is_a_one_line_error_pointing_to_sdr_only(tmp_path, weights_mirror):
    env = dict(os.environ, PATH=str(tmp_path), ZOO_WEIGHTS_MIRROR=str(weights_mirror))  # no ffmpeg on PATH
    result = subprocess.run(
        [sys.executable, "-c", "from zoo_core.cli import main; main()", "eval", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "install ffmpeg" in result.stderr and "--sdr-only" in result.stderr


def test_aggregation_is_median_of_frame_medians_ignoring_nan_and_inf():
    track_a = {"vocals": {"SDR": [1.0, 2.0, np.nan, 10.0]}, "accompaniment": {"SDR": [0.0, np.inf, 4.0]}}
    track_b = {"vocals": {"SDR": [5.0, np.nan]}, "accompaniment": {"SDR": [np.nan, np.nan]}}
    summaries = [track_summary(track_a), track_summary(track_b)]
    assert summaries[0] == {"vocals": {"SDR": 2.0}, "accompaniment": {"SDR": 2.0}}
    assert np.isnan(summaries[1]["accompaniment"]["SDR"])
    assert aggregate(summaries) == {"vocals": {"SDR": 3.5}, "accompaniment": {"SDR": 2.0}}


def test_a_folder_nobody_can_write_is_refused_before_any_separation(zoo, clip_path, unwritable_folder):
    out = unwritable_folder / "results"
    result = zoo("eval", clip_path, "--sdr-only", "-q", "-o", out)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith(f"error: cannot use {out} as the output folder: cannot create a file in")
    assert not (Path(os.environ["ZOO_HOME"]) / "weights").exists()  # not even the weights were pulled
