"""`zoo_core.inference.optimize`: float32 output equal to the reference model, the original weights' SDR unchanged,
TorchScript still works, and the opt-in bfloat16 path stays within 0.05 dB on the real clip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import zoo_core
from zoo_core.audio import read_stems
from zoo_core.errors import ZooError
from zoo_core.export.deprecation import torchscript_deprecation_silenced
from zoo_core.inference import optimize
from zoo_unet.optimize import fold_batchnorm
from zoo_core.metrics import sdr
from zoo_core.reproduce import separate_like_authors

PAPER_MODELS = ["tdc-17", "tfc-17", "tfc-tdf-17", "tfc-tdf-small", "tfc-tdf-large", "tdc-rnn", "tdf-17", "tfc-tdf-small-mag"]
AUTHORS_TOP1_SDR = 2.0075  # median vocal SDR of the authors' own code on this clip (original-reference-run.md)


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual - expected).abs().max() / expected.abs().max()).item()


def with_trained_statistics(model: nn.Module, seed: int = 0) -> nn.Module:
    """Freshly built BatchNorms are identities; give them statistics and affine terms like a trained model's."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                size = module.num_features
                module.running_mean.copy_(0.5 * torch.rand(size, generator=generator) - 0.25)
                module.running_var.copy_(0.5 + torch.rand(size, generator=generator))
                if module.weight is not None:
                    module.weight.copy_(0.5 + torch.rand(size, generator=generator))
                    module.bias.copy_(0.4 * torch.rand(size, generator=generator) - 0.2)
    return model.eval()


@pytest.mark.parametrize(
    "conv",
    [
        nn.Conv2d(6, 5, (3, 3), padding=1),
        nn.Conv2d(6, 5, (2, 1), bias=False),
        nn.Conv1d(6, 5, 3, padding=1),
        nn.ConvTranspose1d(6, 6, 2, stride=2),
        nn.ConvTranspose2d(6, 6, (2, 2), stride=(2, 2)),
    ],
    ids=lambda c: type(c).__name__,
)
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_folds_exactly_into_the_convolution(conv, affine):
    norm = (nn.BatchNorm2d if conv.weight.dim() == 4 else nn.BatchNorm1d)(conv.out_channels, affine=affine)
    with_trained_statistics(nn.Sequential(conv, norm))
    x = torch.randn(2, 6, 8, 10) if conv.weight.dim() == 4 else torch.randn(2, 6, 10)
    with torch.no_grad():
        expected = norm(conv(x))
        actual = fold_batchnorm(conv, norm)(x)
    assert relative_error(actual, expected) < 1e-6


@pytest.mark.parametrize(
    "name, channels_last",
    [(name, True) for name in PAPER_MODELS] + [("tdc-17", False), ("tfc-tdf-small", False)],
    ids=lambda value: {True: "channels-last", False: "nchw"}.get(value, value) if isinstance(value, bool) else value,
)
def test_optimized_float32_equals_the_reference(name, channels_last):
    model = with_trained_statistics(zoo_core.load(name, init=True))
    fast = optimize(model, channels_last=channels_last)
    # the shortest input that fills time_factor frames; batch 1 in NCHW takes the preallocated-buffer path
    batch = 2 if channels_last else 1
    samples = model.hop_length * model.time_factor // 2 + 123
    x = 0.1 * torch.randn(batch, 2, samples, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = model(x)
        actual = fast(x)
    assert actual.shape == expected.shape and actual.dtype == torch.float32
    assert relative_error(actual, expected) < 1e-5
    # the original is untouched: still a trainable float32 module with its BatchNorms
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert all(p.dtype == torch.float32 and p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("name", ["tdc-17", "tfc-tdf-small", "tdc-rnn"])
def test_optimized_model_scripts_and_matches_eager(name):
    fast = optimize(with_trained_statistics(zoo_core.load(name, init=True)))
    with torchscript_deprecation_silenced():
        scripted = torch.jit.script(fast)
    x = 0.1 * torch.randn(1, 2, 3 * fast.n_fft + 17, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        assert relative_error(scripted(x), fast(x)) < 1e-6


@pytest.fixture(scope="module")
def clip(clip_path) -> tuple[torch.Tensor, np.ndarray]:
    """(sum-of-stems mixture [2, N], vocals [2, N]) of the real clip."""
    stems, _ = read_stems(clip_path)
    return torch.from_numpy(stems["drums"] + stems["bass"] + stems["other"] + stems["vocals"]), stems["vocals"]


@pytest.fixture(scope="module")
def tdc17_top1(weights_mirror) -> zoo_core.SeparationModel:
    model = zoo_core.load("tdc-17:top1", init=True)
    model.network.load_state_dict(
        torch.load(weights_mirror / "cac_tdc_17_vocals_top1.pt", map_location="cpu", weights_only=True)
    )
    return model.eval()


def median_sdr(vocals: np.ndarray, estimate: torch.Tensor) -> float:
    return float(np.nanmedian(sdr(vocals.T[None], estimate[0].numpy().T[None])))


@pytest.mark.slow
def test_original_weights_keep_the_authors_sdr_and_bf16_stays_within_0_05_db(tdc17_top1, clip):
    mixture, vocals = clip
    reference = separate_like_authors(tdc17_top1, mixture)
    fast = separate_like_authors(optimize(tdc17_top1), mixture)
    half = separate_like_authors(optimize(tdc17_top1, torch.bfloat16), mixture)

    assert relative_error(fast, reference) < 1e-5
    reference_sdr, fast_sdr, half_sdr = (median_sdr(vocals, e) for e in (reference, fast, half))
    assert reference_sdr == pytest.approx(AUTHORS_TOP1_SDR, abs=0.01)
    assert fast_sdr == pytest.approx(reference_sdr, abs=1e-4)
    assert half.dtype == torch.float32
    assert abs(half_sdr - fast_sdr) <= 0.05


def test_bad_arguments_are_one_line_errors():
    model = zoo_core.load("tdc-17", init=True)
    with pytest.raises(ZooError, match="float32 or torch.bfloat16"):
        optimize(model, torch.float16)
    with pytest.raises(ZooError, match="takes a SeparationModel"):
        optimize(model.network)
