"""Band-split RoFormers (plugin zoo_roformer) against golden outputs of the reference implementation.

Provenance of the expected values (``tests/fixtures/roformer/*.npz``, recipe in its README.md): the reference
``BSRoformer`` / ``MelBandRoformer`` of ZFTurbo/Music-Source-Separation-Training (``models/bs_roformer/``; commit,
options and the rotary-embedding-torch version recorded in each JSON), built with svs-zoo's small configurations
and with viperx's and Kimberley Jensen's released configs, loaded with the seeded weights of `reference_weights`
(a rule applied by tensor name) and run on the first samples of the MUSDB18 clip, in float32 and in float64.
The reference's own STFT and inverse STFT make its waveforms; svs-zoo's registry model gets the same weights
through the public importer (the architecture's converter reads the reference names) and separates the same
samples with its own framing, the whole path `zoo separate` takes for one segment.

`TOLERANCE` (of the expected peak) is tight enough to fail on one wrong operation: rotary pairs taken along the
wrong axis of the head features (halves instead of adjacent pairs, the mutant ``roformer-rotary-halves`` of
scripts/mutants.py) or a tanh-approximated GELU are off by far more than it (figures in the comments below).
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

import zoo_core
from zoo_core.inference import optimize
from zoo_core.registry import architecture_for, build_model, get_entry
from zoo_core.weights.convert import convert
from zoo_roformer.convert import from_reference, to_reference
from zoo_roformer.network import rotary_inverse_frequencies

FIXTURES = Path(__file__).parent / "fixtures" / "roformer"
SMALL = ("bs-roformer-small", "mel-band-roformer-small")
FULL = ("bs-roformer-viperx", "mel-band-roformer-kim")
# of the expected peak. Measured (torch 2.13 CPU, one thread): float32 1.7e-7 (bs small), 2.5e-7 (mel small),
# 1.1e-6 (viperx), 2.2e-7 (Kim); float64 3.1e-16 and 4.6e-16 (small); through optimize() (folded gains, complex
# rotary in process, real for an export) 4.6e-7, 5.3e-7, 9.4e-7, 9.7e-7. Planted bugs: rotary pairs taken as halves
# (x[i], x[i + d/2]) instead of adjacent (x[2i], x[2i+1]), the mutant roformer-rotary-halves: 0.25 and 0.28 of
# peak (re-measured on the 8-band small configurations: 0.24); a tanh-approximated GELU: 1.9e-4 and 3.3e-4 (23/16 bands);
# the DC bin kept (mutant roformer-dc-kept): 0.036.
TOLERANCE = {"float32": 1e-5, "float64": 1e-12}
# trainable parameters of the reference construction with each registry entry's config (its model.parameters()
# also holds 2 x 32 frozen rotary frequencies, which are no parameters here)
REFERENCE_TRAINABLE = {
    "bs-roformer-small": 1_269_588,
    "mel-band-roformer-small": 622_792,
    "bs-roformer-viperx": 159_758_028,
    "mel-band-roformer-kim": 228_202_788,
    "bs-roformer-musdb18": 131_704_100,
}


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def reference_weights(spec: dict) -> dict[str, torch.Tensor]:
    """The fixture's weights under the reference names, by tensor name (README.md): for each key a
    ``numpy.random.default_rng([seed, crc32(key)])`` draw ``z`` of its shape (float64), then ``z * gain /
    sqrt(shape[1])`` for matrices, ``1 + 0.1 z`` for ``*.gamma``, ``0.1 z`` for biases, cast to float32;
    ``*.rotary_embed.freqs`` is rotary-embedding-torch's own value, 1 / 10000^(2i/d)."""
    rule = spec["weights"]
    tensors = {}
    for key, shape in spec["keys"]:
        if key.endswith("rotary_embed.freqs"):
            tensors[key] = 1.0 / (10000 ** (torch.arange(0, 2 * shape[0], 2).float() / (2 * shape[0])))
            continue
        z = np.random.default_rng([rule["seed"], zlib.crc32(key.encode())]).standard_normal(shape)
        if len(shape) >= 2:
            value = z * (rule["gain"] / math.sqrt(shape[1]))
        elif key.endswith("gamma"):
            value = 1.0 + 0.1 * z
        else:
            value = 0.1 * z
        tensors[key] = torch.from_numpy(value.astype(np.float32))
    return tensors


@pytest.mark.parametrize("name", sorted(REFERENCE_TRAINABLE))
def test_registry_entries_count_what_the_reference_builds(name):
    with torch.device("meta"):
        model = build_model(name)  # the modules without the arithmetic of initialising them
    assert zoo_core.count_parameters(model) == REFERENCE_TRAINABLE[name] == get_entry(name).parameters


@pytest.mark.parametrize("name", SMALL + FULL)
@pytest.mark.parametrize("wrapper", ["plain", "state_dict+model.", "module."])
def test_reference_state_dict_imports_with_its_real_key_names(name, wrapper):
    """The reference's full key list (rotary frequencies included) in the wrappers MSST's loader accepts loads
    strictly; every tensor keeps its shape."""
    spec = fixture(name)
    assert spec["parameters"]["trainable"] == REFERENCE_TRAINABLE[name]
    checkpoint = {key: torch.zeros(shape) for key, shape in spec["keys"]}
    for key in checkpoint:
        if key.endswith("rotary_embed.freqs"):
            checkpoint[key] = rotary_inverse_frequencies(2 * checkpoint[key].numel())
    if wrapper == "state_dict+model.":
        checkpoint = {"state_dict": {f"model.{key}": value for key, value in checkpoint.items()}}
    elif wrapper == "module.":
        checkpoint = {f"module.{key}": value for key, value in checkpoint.items()}
    entry = get_entry(name)
    converted = convert(checkpoint, name, architecture_for(entry).convert)
    assert converted.layout == "msst-roformer"
    with torch.device("meta"):
        network = build_model(entry).network
    expected = {key: tuple(value.shape) for key, value in network.state_dict().items()}
    assert {key: tuple(value.shape) for key, value in converted.tensors.items()} == expected
    # and back: our names map onto exactly the reference's key list
    assert sorted(to_reference(network.state_dict(), spec["options"]["dim_head"])) == sorted(k for k, _ in spec["keys"])


def test_other_rotary_frequencies_are_refused():
    spec = fixture("bs-roformer-small")
    checkpoint = {key: torch.zeros(shape) for key, shape in spec["keys"]}
    rotary = next(key for key in checkpoint if key.endswith("rotary_embed.freqs"))
    checkpoint[rotary] = 1.0 / (500000 ** (torch.arange(0, 16, 2).float() / 16))
    with pytest.raises(ValueError, match="rotary frequencies"):
        from_reference(checkpoint)


def separate_like_the_reference(name: str, dtype: str, golden_mixture, target: str = "") -> tuple[torch.Tensor,
                                                                                                  np.ndarray, float]:
    """svs-zoo's estimate of the fixture's samples, its expected value and peak; with ``target``, through
    `zoo_core.inference.optimize(model, target=target)` (the network `zoo separate` or an exporter runs)."""
    spec = fixture(name)
    mixture = golden_mixture(spec["audio"])
    expected = np.load(FIXTURES / f"{name}.npz")[dtype]
    assert list(expected.shape) == spec["output"]["shape"]
    entry = get_entry(name)
    converted = convert(reference_weights(spec), name, architecture_for(entry).convert)
    model = build_model(entry).eval()
    model.network.load_state_dict(converted.tensors, strict=True)
    model = model.to(getattr(torch, dtype))
    if target:
        model = optimize(model, target=target)
    with torch.inference_mode():
        estimate = model(mixture[None].to(getattr(torch, dtype)))[0]
    return estimate, expected, spec["output"]["peak"][dtype]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", SMALL)
def test_small_configurations_match_the_reference_output(name, dtype, golden_mixture):
    estimate, expected, peak = separate_like_the_reference(name, dtype, golden_mixture)
    error = (estimate - torch.from_numpy(expected)).abs().max().item()
    assert error <= TOLERANCE[dtype] * peak, f"{name} {dtype}: max |ours - reference| = {error / peak:.3g} of peak"


@pytest.mark.parametrize("target", ["process", "onnx"])
@pytest.mark.parametrize("name", SMALL)
def test_optimized_small_configurations_match_the_reference_output(name, target, golden_mixture):
    """The folded inference rewrite (complex rotary in this process, real arithmetic for an export) against the
    same float32 golden output."""
    estimate, expected, peak = separate_like_the_reference(name, "float32", golden_mixture, target)
    error = (estimate - torch.from_numpy(expected)).abs().max().item()
    assert error <= TOLERANCE["float32"] * peak, f"{name} {target}: max |ours - reference| = {error / peak:.3g} of peak"


@pytest.mark.slow
@pytest.mark.parametrize("target", ["", "process"], ids=["as-built", "optimized"])
@pytest.mark.parametrize("name", FULL)
def test_released_configurations_match_the_reference_output_on_one_chunk(name, target, golden_mixture):
    """viperx's and Kimberley Jensen's full networks (160M, 228M parameters) on 24 frames, float32, as built and
    through the inference rewrite `zoo separate` runs."""
    estimate, expected, peak = separate_like_the_reference(name, "float32", golden_mixture, target)
    error = (estimate - torch.from_numpy(expected)).abs().max().item()
    assert error <= TOLERANCE["float32"] * peak, f"{name}: max |ours - reference| = {error / peak:.3g} of peak"


@pytest.mark.parametrize("name", SMALL)
def test_small_networks_script_and_equal_eager(name):
    torch.manual_seed(0)
    network = zoo_core.load(name, init=True).network.eval()
    image = torch.randn(1, 4, network.bins, 7)
    with torch.inference_mode():
        expected = network(image)
        scripted = torch.jit.script(network)(image)
    assert expected.shape == (1, network.stems, 4, network.bins, 7)
    torch.testing.assert_close(scripted, expected)
