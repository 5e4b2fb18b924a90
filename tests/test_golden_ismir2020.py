"""Every paper model pinned to the authors' own code: golden fixtures, imported through the public importer.

Each ``tests/fixtures/ismir2020/<name>.json`` records one model built by the authors' code
(ws-choi/ISMIR2020_U_Nets_SVS @ aafcb69, MIT; its ``construction`` field names the code path and arguments),
given seeded random weights, evaluated once on a seeded random spectrogram; ``<name>.npy`` is the authors'
output. The expected values come from running the authors' code (outside this repository, which holds none of
it); svs-zoo reproduces them here from the fixture alone:

* weights: ``numpy.random.default_rng(seed)``; for each entry ``[key, shape, kind, ...]`` in order, kind
  ``uniform`` draws ``u = rng.random(shape)`` (float64) and stores ``float32(low + (high - low) * u)``;
  ``int64`` is the constant given (``num_batches_tracked``), ``hann`` is ``torch.hann_window`` (the
  Lightning file's STFT window). Every BatchNorm has random affine parameters and running statistics (its
  running-statistics bounds were set from the statistics of its input, so activations stay O(1) at every
  depth and eval mode is no identity); a 1 % perturbation of the middle block's parameters moves the
  authors' output by 2e-3 to 0.2 (relative, ``middle_block_sensitivity``), far above the tolerance.
* the weights are written in the authors' file format (a plain state_dict, ``module.`` keys from
  ``nn.DataParallel``, or a Lightning checkpoint ``{"state_dict": {"spec2spec....", "stft.stft.window"},
  "hyper_parameters": ...}``), imported with ``zoo_core.weights.import_checkpoint`` and loaded with
  ``zoo_core.load_model`` — the same path as a released checkpoint. A Lightning file records its STFT settings;
  for the others the test gives the construction's own (``stft``), as ``zoo import --stft`` would.
* input: ``rng = default_rng(input seed)``, ``float32(low + (high - low) * rng.random(shape))``.
* precision: the authors' model ran in float64 on these float32 weights and input (exact in float64), its
  output is stored rounded to float32; svs-zoo runs in float64 too, so the comparison does not depend on one
  machine's float32 summation order, and the error left is the output's float32 rounding (below 1e-6).

``optimize(model)``, the rewritten model ``zoo separate`` runs (BatchNorm folded into the convolutions, fused
dense blocks, channels-last), is pinned to the same outputs directly, in float32 as users run it: its error is
then float32 rounding, measured at most 1.9e-6 of the output's peak (2.9e-6 for the eager model in float32) on
these ten fixtures (`FLOAT32_TOLERANCE`); folding the BatchNorms without their epsilon moves it by 1.4e-4 of peak
or more (tdc-17, tdf-17, tfc-tdf-small).

The comparison is at the spectrogram level, ``model.core(image)`` (the U-Net's input image → its output
image, after the masking rule for the magnitude model): the authors' STFT wrappers call ``torch.stft``/``istft`` in the PyTorch-1.6
style (no ``return_complex``) and ``librosa``, which do not run on torch 2.x; the STFTs themselves are pinned
elsewhere (tdc-17 with the authors' weights reproduces their per-frame SDRs, ``test_reproduce.py``).
The Lightning generation's images are ``[B, C, T, F+1]`` with channels ``[Re L, Re R, Im L, Im R]``; the test
brings them to ours (``[B, C, F+1, T]``, ``[Re L, Im L, Re R, Im R]``) before comparing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner


import zoo_core
from zoo_core.cli import main
from zoo_core.inference import optimize
from zoo_core.registry import builtin_entries, count_parameters
from zoo_core.weights import import_checkpoint

FIXTURES = Path(__file__).parent / "fixtures" / "ismir2020"
GOLDEN = sorted(path.stem for path in FIXTURES.glob("*.json"))
SLOW = {"tfc-17", "tfc-tdf-17", "tfc-tdf-large", "tfc-tdf-large-lightning"}  # 17 blocks or n_fft 4096: 5-15 s each
TOLERANCE = 1e-5  # max |ours - authors'|; outputs are O(1) (rms 0.5 to 2, max up to 15)
FLOAT32_TOLERANCE = 1e-5  # of the authors' output peak, for optimize() in float32 (module docstring)
VARIANT = "golden"

# the models of the paper and of the authors' code in svs-zoo's registry; each has at least one fixture built by
# the authors' code (see each JSON's "construction")
PAPER_MODELS = {"tdc-17", "tfc-17", "tfc-tdf-17", "tfc-tdf-small", "tfc-tdf-large", "tdf-17", "tdc-rnn", "tfc-rnn",
                "tfc-tdf-small-mag"}
EXPECTED_FIXTURES = {
    "tdc-17": "ismir2020",  # [Table-1] notebook
    "tfc-17": "ismir2020",  # [Table-2] notebook's skeleton with intermediate_layers.TFC blocks
    "tfc-tdf-17": "ismir2020",  # [Table-2] notebook
    "tfc-tdf-large": "ismir2020",  # [Table-3] notebook, saved from nn.DataParallel
    "tfc-rnn": "ismir2020",  # intermediate_layers.TFC_RNN in frameworks.U_Net_Framework
    "tfc-tdf-small": "lightning",  # tfc_tdf_net.py, README's small run
    "tfc-tdf-large-lightning": "lightning",  # tfc_tdf_net.py, README's large run
    "tfc-tdf-small-mag": "lightning",  # tfc_tdf_net.py, README's "traditional" magnitude masking flags
    "tdf-17": "lightning",  # tdf_net.py with 17 blocks
    "tdc-rnn": "lightning",  # tdc_rnn_net.py argparse defaults
}


def read_fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def regenerate_weights(fixture: dict) -> dict[str, torch.Tensor]:
    """The authors' state dict, keys in their file's order (see the module docstring for the rule)."""
    rng = np.random.default_rng(fixture["weights"]["seed"])
    tensors = {}
    for key, shape, kind, *args in fixture["weights"]["entries"]:
        if kind == "int64":
            tensors[key] = torch.tensor(args[0], dtype=torch.int64).reshape(shape)
        elif kind == "hann":
            tensors[key] = torch.hann_window(shape[0])
        else:
            low, high = args
            tensors[key] = torch.from_numpy((low + (high - low) * rng.random(size=tuple(shape))).astype(np.float32))
    digest = hashlib.sha256()
    for key, value in tensors.items():
        digest.update(key.encode())
        digest.update(value.contiguous().numpy().tobytes())
    assert digest.hexdigest() == fixture["weights"]["sha256"], "the weights rule no longer gives the fixture's weights"
    return tensors


def regenerate_input(fixture: dict) -> torch.Tensor:
    spec = fixture["input"]
    u = np.random.default_rng(spec["seed"]).random(size=tuple(spec["shape"]))
    image = (spec["low"] + (spec["high"] - spec["low"]) * u).astype(np.float32)
    assert hashlib.sha256(image.tobytes()).hexdigest() == spec["sha256"], "the input rule no longer gives the input"
    return torch.from_numpy(image)


def authors_output(fixture: dict) -> torch.Tensor:
    output = torch.from_numpy(np.load(FIXTURES / fixture["output"]["file"]))
    assert list(output.shape) == fixture["output"]["shape"]
    return output


def to_our_layout(image: torch.Tensor, generation: str) -> torch.Tensor:
    """An image in the fixture's generation's layout → ours, ``[B, C, F+1, T]`` with ``[Re L, Im L, Re R, Im R]``."""
    if generation == "ismir2020":
        return image  # the paper's code uses our layout
    image = image.transpose(2, 3)  # [B, C, T, F+1] → [B, C, F+1, T]
    if image.shape[1] == 4:  # [Re L, Re R, Im L, Im R] → [Re L, Im L, Re R, Im R]; magnitude [L, R] stays
        image = image[:, [0, 2, 1, 3]]
    return image


def write_authors_file(fixture: dict, folder: Path) -> Path:
    """The weights in the authors' own file format, as their code saved them."""
    tensors = regenerate_weights(fixture)
    if fixture["file_format"] == "lightning":
        path = folder / "vocals_epoch=0.ckpt"
        torch.save({"epoch": 0, "global_step": 0, "state_dict": tensors,
                    "hyper_parameters": fixture["hyper_parameters"]}, path)
    else:  # "state_dict" or "dataparallel": the keys already carry module. where the file had them
        path = folder / "original.pt"
        torch.save(tensors, path)
    return path


def stft_option(fixture: dict) -> str | None:
    """What ``zoo import --stft`` says for a file that records no STFT settings: those of the authors'
    construction (a Lightning checkpoint records its own in its hyper-parameters)."""
    if fixture["file_format"] == "lightning":
        return None
    return ",".join(f"{key}={str(value).lower()}" for key, value in fixture["stft"].items())


def framing(fixture: dict) -> tuple[int, int, int, bool]:
    """(n_fft, hop, frames, centred) the authors' construction used."""
    if fixture["file_format"] == "lightning":  # the Lightning code always centred its torch.stft
        hparams = fixture["hyper_parameters"]
        return hparams["n_fft"], hparams["hop_length"], hparams["num_frame"], True
    stft = fixture["stft"]
    return stft["n_fft"], stft["hop_length"], stft["frames"], stft["center"]


def spectrogram_estimate(model, image: torch.Tensor) -> torch.Tensor:
    """svs-zoo's ``model.core``: the network plus its output rule (mapping, or the mask times the input), run in
    float64; the paper's models estimate one stem, the vocals."""
    assert model.stems == ["vocals"]
    with torch.inference_mode():
        estimate = model.double().core(image.double())
    assert estimate.shape == (image.shape[0], 1, *image.shape[1:])
    return estimate[:, 0]


def test_every_paper_model_has_a_golden_fixture():
    assert set(GOLDEN) == set(EXPECTED_FIXTURES)
    assert {read_fixture(name)["model"] for name in GOLDEN} == PAPER_MODELS
    assert PAPER_MODELS <= {entry.name for entry in builtin_entries("unet")}


@pytest.mark.parametrize("name", GOLDEN)
def test_trainable_parameters_equal_the_authors_construction(name):
    fixture = read_fixture(name)
    assert count_parameters(zoo_core.load(fixture["model"], init=True)) == fixture["trainable_parameters"]


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in GOLDEN])
def test_imported_model_reproduces_the_authors_output(name, tmp_path):
    fixture = read_fixture(name)
    assert fixture["generation"] == EXPECTED_FIXTURES[name]
    path = write_authors_file(fixture, tmp_path)

    import_checkpoint(path, fixture["model"], VARIANT, stft=stft_option(fixture))
    model = zoo_core.load(f"{fixture['model']}:{VARIANT}")
    assert (model.provenance.format, model.provenance.layout) == (fixture["file_format"], fixture["generation"])
    assert (model.n_fft, model.hop_length, model.settings.frames, model.center) == framing(fixture)

    image = to_our_layout(regenerate_input(fixture), fixture["generation"])
    expected = to_our_layout(authors_output(fixture), fixture["generation"]).double()
    ours = spectrogram_estimate(model, image)
    assert ours.shape == expected.shape
    error = (ours - expected).abs().max().item()
    assert error <= TOLERANCE, f"{name}: max |svs-zoo - authors'| = {error:.3g}"


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in GOLDEN])
def test_optimized_model_reproduces_the_authors_output_in_float32(name, tmp_path):
    fixture = read_fixture(name)
    import_checkpoint(write_authors_file(fixture, tmp_path), fixture["model"], VARIANT, stft=stft_option(fixture))
    fast = optimize(zoo_core.load(f"{fixture['model']}:{VARIANT}"))
    image = to_our_layout(regenerate_input(fixture), fixture["generation"])
    expected = to_our_layout(authors_output(fixture), fixture["generation"])
    with torch.inference_mode():
        ours = fast.core(image)[:, 0]
    assert ours.dtype == torch.float32 and ours.shape == expected.shape
    peak = expected.abs().max().item()
    error = (ours - expected).abs().max().item()
    assert error <= FLOAT32_TOLERANCE * peak, f"{name}: optimize(), max |svs-zoo - authors'| = {error / peak:.3g} of peak"


def test_zoo_import_cli_reproduces_the_authors_output(tmp_path):
    """The command-line importer takes the same path: tfc-tdf-small-mag from its Lightning checkpoint."""
    fixture = read_fixture("tfc-tdf-small-mag")
    path = write_authors_file(fixture, tmp_path)
    result = CliRunner().invoke(main, ["import", str(path), "--model", fixture["model"], "--variant", VARIANT])
    assert result.exit_code == 0, result.output
    model = zoo_core.load(f"{fixture['model']}:{VARIANT}")
    expected = to_our_layout(authors_output(fixture), "lightning").double()
    ours = spectrogram_estimate(model, to_our_layout(regenerate_input(fixture), "lightning"))
    assert (ours - expected).abs().max().item() <= TOLERANCE
