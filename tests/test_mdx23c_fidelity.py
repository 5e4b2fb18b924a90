"""TFC-TDF-UNet v3 (MDX23C) against golden outputs of the reference implementation.

Provenance of the expected values (``tests/fixtures/mdx23c/*.npz``): the reference ``TFC_TDF_net`` of
ZFTurbo/Music-Source-Separation-Training (``models/mdx23c_tfc_tdf_v3.py``, MIT; commit recorded in each JSON)
was built from ``configs/config_vocals_mdx23c.yaml`` (2 stems; UVR's ``model_2_stem_full_band_8k.yaml`` of
MDX23C-8KFFT-InstVoc_HQ has the same architecture) and ``configs/config_musdb18_mdx23c.yaml`` (4 stems),
loaded with the deterministic weights of `reference_weights`, and run in fp32 (``eval()``, inference mode) on
the first 64,512 samples (64 frames, a quarter of a training window) of the mixture (stream 0) of the MUSDB18
clip ``The Easton Ellises - Falcon 69.stem.mp4``, decoded with ``zoo_core.audio.read_audio``. Its waveform
output ``[stems, 2, 64512]`` is stored in float32 as computed (``fixtures/mdx23c/README.md``: the recipe and
``regenerate.py``). The reference code is not needed here: each JSON holds the weight rule, its seed and the
reference's key list.

svs-zoo's registry model (``mdx23c-vocals``, ``mdx23c-musdb18``) gets the same weights through the public
importer's conversion (the architecture's converter recognises the reference naming) and separates the window
with its own framing (periodic Hann, n_fft 8192, hop 1024, centred with reflect padding, the lowest 4096 bins
in, zeros above them before the inverse) — the whole path ``zoo separate`` takes, once plain and once through
``zoo_core.inference.optimize``. The outputs must agree within `TOLERANCE` of the expected peak: tight enough
that a tanh-approximated GELU (an error of 4.7e-5 to 5.4e-5 of peak, measured) fails both.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import zoo_core
from zoo_core.inference import optimize
from zoo_core.registry import architecture_for, build_model, get_entry
from zoo_core.weights.convert import convert
from zoo_tfc_tdf_v3.convert import from_reference, network_kwargs, to_reference_key
from zoo_tfc_tdf_v3.network import TFCTDFv3Net, optimize_v3

FIXTURES = Path(__file__).parent / "fixtures" / "mdx23c"
CONFIGURATIONS = ("tfc-tdf-v3-2stem", "tfc-tdf-v3-4stem")
REGISTRY_MODEL = {"tfc-tdf-v3-2stem": "mdx23c-vocals", "tfc-tdf-v3-4stem": "mdx23c-musdb18"}
# of the expected output's peak. Measured (torch 2.13 CPU, 1 and 2 threads): plain 2.6e-7 to 6.1e-7, optimize()
# 1.2e-6 to 1.7e-6 (its Winograd convolutions round differently, see optimize_v3); a tanh-approximated GELU
# instead of the exact one: 4.7e-5 to 5.4e-5.
TOLERANCE = {"plain": 5e-6, "optimize": 1e-5}
# trainable parameters of the reference construction (TFC_TDF_net with the configs above), verified by counting
PARAMETERS = {"tfc-tdf-v3-2stem": 111_990_272, "tfc-tdf-v3-4stem": 111_994_368}


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def reference_weights(spec: dict) -> dict[str, torch.Tensor]:
    """The fixture's weights under the reference names, from ``spec["weights"]`` and ``spec["keys"]``.

    One ``numpy.random.default_rng(seed)``; for every key in the stored order one draw
    ``z = rng.standard_normal(shape)`` (float64), then
    - tensors of 2 or more dimensions (convolutions, linear layers): ``z * gain / sqrt(fan_in)`` with
      ``fan_in = prod(shape[1:])``;
    - ``*.weight`` of 1 dimension (norm scale): ``1 + 0.1 z``; ``*.bias``: ``0.1 z``;
    - BatchNorm ``running_mean``: ``0.1 z``; ``running_var``: ``1 + 0.1 |z|``; ``num_batches_tracked``: 0, no draw;
    cast to float32.
    """
    rule = spec["weights"]
    rng = np.random.default_rng(rule["seed"])
    gain = rule["gain"]
    tensors = {}
    for key, shape in spec["keys"]:
        if key.endswith("num_batches_tracked"):
            tensors[key] = torch.tensor(0, dtype=torch.int64)
            continue
        z = rng.standard_normal(shape)
        if len(shape) >= 2:
            value = z * (gain / math.sqrt(math.prod(shape[1:])))
        elif key.endswith("running_var"):
            value = 1.0 + 0.1 * np.abs(z)
        elif key.endswith(".weight"):
            value = 1.0 + 0.1 * z
        else:  # bias, running_mean
            value = 0.1 * z
        tensors[key] = torch.from_numpy(value.astype(np.float32))
    return tensors


def build(spec: dict, **overrides) -> TFCTDFv3Net:
    return TFCTDFv3Net(**{**network_kwargs(spec["config"]), **overrides})


@pytest.mark.parametrize("name", CONFIGURATIONS)
def test_parameter_count_is_the_references(name):
    spec = fixture(name)
    with torch.device("meta"):
        network = build(spec)
    count = sum(p.numel() for p in network.parameters() if p.requires_grad)
    assert count == PARAMETERS[name] == spec["trainable_parameters"]


# the registry's v3 entries, counted by the reference construction (ZFTurbo's TFC_TDF_net with each config;
# tfc-tdf-v3-small with svs-zoo's small configuration: n_fft 4096, dim_f 2048, 4 subbands, 16 channels and growth,
# 4 scales, 1 block per scale, bottleneck 4, 4 instruments)
REGISTRY_PARAMETERS = {
    "mdx23c-vocals": 111_990_272,
    "mdx23c-musdb18": 111_994_368,
    "mdx23c-instvoc-hq": 111_990_272,
    "tfc-tdf-v3-small": 926_912,
}


@pytest.mark.parametrize("name", sorted(REGISTRY_PARAMETERS))
def test_registry_entries_count_what_the_reference_builds(name):
    from zoo_core.registry import build_model

    with torch.device("meta"):  # the modules without the arithmetic of initialising them
        model = build_model(name)
    assert zoo_core.count_parameters(model) == REGISTRY_PARAMETERS[name] == get_entry(name).parameters


@pytest.mark.parametrize("name", CONFIGURATIONS)
@pytest.mark.parametrize("wrapper", ["plain", "lightning"])
def test_reference_state_dict_imports_with_no_key_missing_or_unexpected(name, wrapper):
    spec = fixture(name)
    with torch.device("meta"):
        network = build(spec)
        checkpoint = {key: torch.empty(shape) for key, shape in spec["keys"]}
    if wrapper == "lightning":
        checkpoint = {"state_dict": {f"model.{key}": value for key, value in checkpoint.items()}}
    converted = from_reference(checkpoint)
    expected = {key: tuple(value.shape) for key, value in network.state_dict().items()}
    assert {key: tuple(value.shape) for key, value in converted.items()} == expected
    network.load_state_dict(converted, strict=True)
    assert sorted(to_reference_key(key) for key in expected) == sorted(key for key, _ in spec["keys"])


def test_tiny_network_scripts_plain_and_optimised():
    torch.manual_seed(0)
    network = TFCTDFv3Net(stems=2, bins=256, channels=8, growth=8, levels=2).eval()
    image = torch.randn(1, 4, 256, 16)
    with torch.inference_mode():
        expected = network(image)
        plain = torch.jit.script(network)(image)
        optimised = torch.jit.script(optimize_v3(network))(image)
    assert network.time_factor == 4
    assert expected.shape == (1, 2, 4, 256, 16)
    torch.testing.assert_close(plain, expected)
    torch.testing.assert_close(optimised, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", CONFIGURATIONS)
def test_the_registry_model_matches_the_reference_output(name, golden_mixture):
    spec = fixture(name)
    mixture = golden_mixture(spec["audio"])  # the very samples the reference ran on (their hash is checked)

    stored = np.load(FIXTURES / spec["output"]["file"])["output"]
    assert stored.dtype == np.float32 and list(stored.shape) == spec["output"]["shape"]
    expected = torch.from_numpy(stored)
    peak = spec["output"]["peak"]

    entry = get_entry(REGISTRY_MODEL[name])
    converted = convert(reference_weights(spec), name, architecture_for(entry).convert)
    assert converted.layout == "mdx23c"
    model = build_model(entry).eval()
    model.network.load_state_dict(converted.tensors, strict=True)
    instruments = spec["config"]["training"]["instruments"]
    # the checkpoint's order; the 2-stem config's "other" is everything but the vocals
    assert model.stems == (instruments if len(instruments) == 4 else ["vocals", "instrumental"])
    for variant, separator in (("plain", model), ("optimize", optimize(model))):
        with torch.inference_mode():
            estimate = separator(mixture[None])[0]
        error = (estimate - expected).abs().max().item()
        assert error <= TOLERANCE[variant] * peak, (
            f"{name} ({variant}): max |ours - reference| = {error:.3g} = {error / peak:.3g} of peak"
        )
