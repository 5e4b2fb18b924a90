"""Ensembles and --tta end to end on the real clip with tdc-17's three released checkpoints.

Every expected value is an independent definition computed in numpy over files the CLI wrote: each member is
separated alone with `zoo separate`, its files are read back, and the rule is applied in numpy (MSST's
``ensemble.py`` semantics; the spectral rules through a whole-track STFT written here after librosa's
``stft``/``istft`` defaults: centred, zero padding, periodic Hann from scipy, squared-window normalisation).
The ensemble's own written files must equal that.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner
from scipy.signal import get_window

from zoo_core.cli import main

SECONDS = 2.0
MEMBERS = ("tdc-17:top1", "tdc-17:top2", "tdc-17:top3")
STEMS = ("vocals", "accompaniment")
N_FFT, HOP = 2048, 1024  # tdc-17's STFT, which its checkpoints share (and MSST's default)


def _zoo(*args) -> "click.testing.Result":
    return CliRunner().invoke(main, [str(a) for a in args])


def _read(folder: Path) -> dict[str, np.ndarray]:
    """``{stem: [channels, frames]}`` as written."""
    return {stem: sf.read(folder / f"{stem}.wav", dtype="float32", always_2d=True)[0].T for stem in STEMS}


@pytest.fixture(scope="module")
def clip(clip_path, weights_mirror, tmp_path_factory):
    """The clip's mixture (stream 0), first 3 s, as a float WAV; and each member's own separation of it."""
    root = tmp_path_factory.mktemp("ensemble")
    with av.open(str(clip_path)) as container:
        stream = container.streams.audio[0]
        rate = stream.rate
        mixture = np.concatenate([frame.to_ndarray() for frame in container.decode(stream)], axis=1)
    mixture = mixture[:, : int(SECONDS * rate)].astype(np.float32)
    (root / "in").mkdir()
    sf.write(root / "in" / "clip.wav", mixture.T, rate, subtype="FLOAT")
    singles = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ZOO_WEIGHTS_MIRROR", str(weights_mirror))
        patch.setenv("ZOO_HOME", str(root / "home"))
        for member in MEMBERS:
            result = _zoo("separate", root / "in" / "clip.wav", "-m", member, "-o", root / "single", "-q")
            assert result.exit_code == 0, result.output
            singles[member] = _read(root / "single" / member.replace(":", "_") / "clip")
    return {"root": root, "path": root / "in" / "clip.wav", "mixture": mixture, "rate": rate, "singles": singles}


@pytest.fixture
def zoo(weights_mirror, clip, monkeypatch):
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(weights_mirror))
    monkeypatch.setenv("ZOO_HOME", str(clip["root"] / "home"))  # the weights cache the members filled
    return _zoo


def _separate_ensemble(zoo, clip, out: Path, rule: str, members, *extra) -> tuple[dict[str, np.ndarray], Path]:
    args = ["separate", clip["path"], "-o", out, "-q", "--ensemble", rule, *extra]
    for member in members:
        args += ["-m", member]
    result = zoo(*args)
    assert result.exit_code == 0, result.output
    folders = [p for p in out.iterdir() if p.is_dir()]
    assert len(folders) == 1
    return _read(folders[0] / "clip"), folders[0]


# ------------------------------------------------------------------ the definitions (numpy, whole track)

def _stft(x: np.ndarray) -> np.ndarray:
    """librosa.stft(x, n_fft=N_FFT, hop_length=HOP) with its defaults: centred, zero padding, periodic Hann."""
    window = get_window("hann", N_FFT, fftbins=True)
    padded = np.pad(x.astype(np.float64), [(0, 0), (N_FFT // 2, N_FFT // 2)])
    frames = 1 + (padded.shape[-1] - N_FFT) // HOP
    index = np.arange(N_FFT)[None, :] + HOP * np.arange(frames)[:, None]
    return np.fft.rfft(padded[:, index] * window, axis=-1)  # [channels, frames, bins]


def _istft(spec: np.ndarray, length: int) -> np.ndarray:
    """librosa.istft(spec, hop_length=HOP, length=length): windowed overlap-add over the summed squared window."""
    window = get_window("hann", N_FFT, fftbins=True)
    frames = spec.shape[1]
    pieces = np.fft.irfft(spec, n=N_FFT, axis=-1) * window
    out = np.zeros((spec.shape[0], N_FFT + HOP * (frames - 1)))
    norm = np.zeros(out.shape[1])
    for f in range(frames):
        out[:, f * HOP : f * HOP + N_FFT] += pieces[:, f]
        norm[f * HOP : f * HOP + N_FFT] += window**2
    out = out / np.where(norm > np.finfo(float).tiny, norm, 1.0)
    return out[:, N_FFT // 2 : N_FFT // 2 + length]


def _pick(stack: np.ndarray, largest: bool) -> np.ndarray:
    magnitude = np.abs(stack)
    index = magnitude.argmax(axis=0) if largest else magnitude.argmin(axis=0)
    return np.take_along_axis(stack, index[None], axis=0)[0]


def _expected(rule: str, waves: list[np.ndarray], weights: list[float]) -> np.ndarray:
    w = np.asarray(weights, np.float64)
    stack = np.stack([x.astype(np.float64) for x in waves])
    if rule == "avg-wave":
        return np.tensordot(w, stack, axes=1) / w.sum()
    if rule == "median-wave":
        return np.median(stack, axis=0)
    spectra = np.stack([_stft(x) for x in waves])
    if rule == "avg-spec":
        combined = np.tensordot(w, spectra, axes=1) / w.sum()
    else:
        combined = _pick(spectra, largest=rule == "max-spec")
    return _istft(combined, waves[0].shape[-1])


# ------------------------------------------------------------------ the rules

@pytest.mark.parametrize("rule, members, weights", [
    ("avg-wave", MEMBERS, [5.0, 3.0, 2.0]),  # weights that do not sum to 1: the rule divides by their sum
    ("median-wave", MEMBERS, None),
    ("avg-spec", MEMBERS[:2], [0.7, 0.3]),
    ("max-spec", MEMBERS, None),
    ("min-spec", MEMBERS, None),
])
def test_each_rule_equals_numpy_over_the_members_written_outputs(zoo, clip, tmp_path, rule, members, weights):
    extra = ["--weights", ",".join(map(str, weights))] if weights else []
    written, _ = _separate_ensemble(zoo, clip, tmp_path / "out", rule, members, *extra)
    for stem in STEMS:
        expected = _expected(rule, [clip["singles"][m][stem] for m in members], weights or [1.0] * len(members))
        assert written[stem].shape == expected.shape == clip["mixture"].shape
        np.testing.assert_allclose(written[stem], expected, atol=2e-5, err_msg=f"{rule} {stem}")
        # and the rule did something: not any one member's output
        assert all(np.abs(written[stem] - clip["singles"][m][stem]).max() > 1e-3 for m in members)


def test_folder_and_manifest_name_the_members_and_the_rule(zoo, clip, tmp_path):
    _, folder = _separate_ensemble(zoo, clip, tmp_path / "out", "avg-wave", MEMBERS[:2], "--weights", "2,1")
    assert folder.name == "avg-wave_tdc-17_top1x2+tdc-17_top2x1"
    record = [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()][-1]
    assert record["status"] == "done"
    assert record["model"] == "avg-wave(tdc-17:top1*2, tdc-17:top2*1)"
    assert record["settings"]["ensemble"] == {
        "rule": "avg-wave", "members": ["tdc-17:top1", "tdc-17:top2"],
        "weights": {"vocals": [2.0, 1.0], "accompaniment": [2.0, 1.0]},
    }


# ------------------------------------------------------------------ test-time augmentation

def test_tta_equals_the_mean_of_the_unaugmented_separations(zoo, clip, tmp_path):
    """MSST's --use_tta: separate the mixture, its channels swapped, its polarity inverted; swap back and negate
    back the estimates; the mean of the three. Here each augmented input is its own file, separated alone."""
    mixture, rate = clip["mixture"], clip["rate"]
    inputs = {"swapped": mixture[::-1], "inverted": -mixture}
    estimates = {}
    for name, audio in inputs.items():
        (tmp_path / name).mkdir()
        sf.write(tmp_path / name / "clip.wav", audio.T, rate, subtype="FLOAT")
        assert zoo("separate", tmp_path / name / "clip.wav", "-m", MEMBERS[0], "-o", tmp_path / f"out-{name}", "-q").exit_code == 0
        estimates[name] = _read(tmp_path / f"out-{name}" / "tdc-17_top1" / "clip")
    result = zoo("separate", clip["path"], "-m", MEMBERS[0], "--tta", "-o", tmp_path / "tta", "-q")
    assert result.exit_code == 0, result.output
    written = _read(tmp_path / "tta" / "tdc-17_top1_tta" / "clip")
    for stem in STEMS:
        plain = clip["singles"][MEMBERS[0]][stem]
        expected = (plain + estimates["swapped"][stem][::-1] - estimates["inverted"][stem]) / 3
        np.testing.assert_allclose(written[stem], expected, atol=2e-5, err_msg=stem)
        assert np.abs(written[stem] - plain).max() > 1e-3


# ------------------------------------------------------------------ stems and bad input

def test_an_instrumental_stem_meets_a_four_stem_models_accompaniment():
    """The issue's rule: instrumental counts as mixture - vocals where another member has four stems."""
    from zoo_core.ensemble.engine import stem_mapping

    four = stem_mapping(["drums", "bass", "other", "vocals"])
    two = stem_mapping(["vocals", "instrumental"])
    assert four["accompaniment"] == "accompaniment"  # formed as mixture - vocals by the engine
    assert two["accompaniment"] == "instrumental"
    assert sorted(set(four) & set(two)) == ["accompaniment", "vocals"]


@pytest.mark.parametrize("args, message", [
    (["-m", "tdc-17:top1", "-m", "tdc-17:top2"], "combine them with --ensemble"),
    (["-m", "tdc-17:top1", "-m", "tdc-17:top2", "--ensemble", "avg-wave", "--weights", "1,2,3"], "3 values for 2 models"),
    (["-m", "tdc-17:top1", "-m", "tdc-17:top2", "--ensemble", "median-wave", "--weights", "1,2"], "does not weigh"),
    (["-m", "tdc-17:top1", "--ensemble", "avg-wave"], "at least two models"),
    (["-m", "tdc-17:top1", "-m", "tdc-17:top2", "--ensemble", "avg-wave", "--method", "authors"], "overlap-add"),
    (["--artifact", "tdc-17.ts.pt", "--tta"], "separates alone"),
])
def test_bad_ensembles_are_one_line_errors(zoo, clip, tmp_path, args, message):
    result = zoo("separate", clip["path"], "-o", tmp_path / "out", *args)
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


# ------------------------------------------------------------------ live

def test_a_streamed_spectral_ensemble_is_the_numpy_rule_delayed_by_its_latency(zoo, clip):
    """Blocks of random sizes in; out, after one latency of silence, the max-spec rule (numpy, above) over the
    members' written files. The latency is the slowest member's plus one STFT frame less a sample."""
    import zoo_core
    from zoo_core.separation import SeparationSettings
    from zoo_core.stream import StreamingSeparator

    members = MEMBERS[:2]
    ensemble = zoo_core.load(f"max-spec({', '.join(members)})", device="cpu", precision="fp32")
    separator = StreamingSeparator(ensemble, clip["rate"], channels=2)
    segment, _ = SeparationSettings().geometry(ensemble.members[0])
    assert separator.latency == (segment - 1) + (N_FFT - 1)
    rng = np.random.default_rng(0)
    audio, pieces, start = clip["mixture"].T, [], 0
    while start < audio.shape[0]:
        size = int(rng.integers(1, 20000))
        out = separator.push(audio[start : start + size])
        assert {part.shape[0] for part in out.values()} == {min(size, audio.shape[0] - start)}
        pieces.append(out)
        start += size
    pieces.append(separator.flush())
    for stem in STEMS:
        streamed = np.concatenate([p[stem] for p in pieces])
        assert not streamed[: separator.latency].any()
        expected = _expected("max-spec", [clip["singles"][m][stem] for m in members], [1.0, 1.0])
        np.testing.assert_allclose(streamed[separator.latency :].T, expected, atol=2e-5, err_msg=stem)


# ------------------------------------------------------------------ members that differ

def test_members_with_other_stems_stft_and_rate_combine_on_their_common_stems(clip, tdc17, tmp_path):
    """tdc-17:top1 (vocals, 2048/1024, 44.1 kHz), a four-stem TFC-TDF-UNet v3 (4096/1024) and a tdf-17 built
    for 32 kHz (both initialised, seeded): avg-spec over vocals and accompaniment (mixture - vocals for the
    four-stem one) with MSST's default STFT, as the members share none. Expected: numpy over each member's own
    written files."""
    import dataclasses

    import torch

    import zoo_core
    from zoo_core.ensemble.engine import Ensemble
    from zoo_core.registry import build_model
    from zoo_core.separation import separate_file

    torch.manual_seed(0)
    four = zoo_core.load("tfc-tdf-v3-small", init=True).eval()
    entry = zoo_core.get_entry("tdf-17")
    slow = build_model("tdf-17", stft=dataclasses.replace(entry.stft, sample_rate=32000)).eval()
    members = [tdc17, four, slow]
    ensemble = Ensemble(members, "avg-spec", [1.0, 0.5, 0.5], label="mixed", folder="mixed")
    assert ensemble.stems == ["vocals", "accompaniment"] and ensemble.stft == (2048, 1024)
    separate_file(ensemble, clip["path"], tmp_path)
    written = _read(tmp_path / "mixed" / "clip")
    singles = []
    for index, member in enumerate(members):
        result = separate_file(member, clip["path"], tmp_path / f"member{index}", stems=list(STEMS))
        singles.append(_read(result.outputs["vocals"].parent))
    for stem in STEMS:
        expected = _expected("avg-spec", [s[stem] for s in singles], [1.0, 0.5, 0.5])
        np.testing.assert_allclose(written[stem], expected, atol=2e-5, err_msg=stem)


class _Identity(torch.nn.Module):
    """The input as the vocals: cheap enough to stream minutes through an ensemble."""

    hop_length = 1024
    stems = ["vocals"]
    entry_name, provenance, default_overlap = "identity", None, 0.25  # the engine's model protocol

    def __init__(self, sample_rate: int, hops: int):
        super().__init__()
        self.sample_rate, self.hops = sample_rate, hops

    def training_segment(self) -> int:
        return self.hops * self.hop_length

    def forward(self, mixture):
        return mixture.unsqueeze(1)


def test_an_ensembles_held_state_does_not_grow_over_a_long_stream():
    """Members at two rates with segments 4x apart, a spectral rule: what the ensemble holds (members' buffers,
    the queues awaiting the slowest member, the STFT) stays within its first 10 seconds' figure plus one block."""
    from zoo_core.ensemble.engine import Ensemble
    from zoo_core.separation import SeparationSettings

    ensemble = Ensemble([_Identity(44100, 8), _Identity(32000, 32)], "max-spec", label="identities")
    separator = ensemble.block_separator(48000, 1, SeparationSettings())
    rng = np.random.default_rng(2)
    held = []
    for _ in range(300):  # about half a minute in blocks of up to 0.2 s
        block = rng.standard_normal((int(rng.integers(1, 9600)), 1)).astype(np.float32)
        separator.push(block)
        held.append(separator.held_frames() + separator.spectral.inputs.shape[-1] + separator.spectral.sums.shape[-1])
    assert max(held[150:]) <= max(held[:100]) + 9600


# ------------------------------------------------------------------ export

def test_an_exported_ensemble_separates_as_the_weighted_mean_of_its_members_files(zoo, clip, tmp_path):
    """Checkpoints of one model share an STFT: `zoo export` writes the avg-wave ensemble as one TorchScript file
    (their networks side by side), and `zoo separate --artifact` with it gives the numpy weighted mean of the
    members' own written files."""
    file = tmp_path / "ensemble.ts.pt"
    result = zoo("export", "avg-wave(tdc-17:top1, tdc-17:top2*3)", "-o", file)
    assert result.exit_code == 0, result.output
    result = zoo("separate", clip["path"], "--artifact", file, "-o", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.output
    folders = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    written = _read(folders[0] / "clip")
    for stem in STEMS:
        expected = _expected("avg-wave", [clip["singles"][m][stem] for m in MEMBERS[:2]], [1.0, 3.0])
        np.testing.assert_allclose(written[stem], expected, atol=2e-5, err_msg=stem)


def test_only_linear_ensembles_of_one_framing_export(zoo, tdc17, tmp_path):
    import zoo_core
    from zoo_core.ensemble.export import side_by_side
    from zoo_core.errors import ZooError

    for name, message in [("median-wave(tdc-17:top1, tdc-17:top2)", "avg-wave ensemble"),
                          ("avg-wave(tta(tdc-17:top1), tdc-17:top2)", "plain models")]:
        result = zoo("export", name, "-o", tmp_path / "e.ts.pt")
        assert result.exit_code != 0 and message in result.output, (name, result.output)
    with pytest.raises(ZooError, match="share the STFT"):
        side_by_side([tdc17, zoo_core.load("tfc-tdf-v3-small", init=True)])
