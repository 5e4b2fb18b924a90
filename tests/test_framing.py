"""Spectrogram framing: exact inversion, channel order, padding of any length."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from zoo_core.framing import ISTFT, STFT, ComplexAsChannels, MagnitudeFraming
import zoo_core


@pytest.mark.parametrize("center", [True, False])
def test_istft_inverts_stft(center):
    torch.manual_seed(1)
    n_fft, hop = 512, 256
    wave = torch.randn(2, 2, n_fft + 37 * hop)
    spec = STFT(n_fft, hop, center)(wave)
    back = ISTFT(n_fft, hop, center)(spec, wave.shape[-1])
    if center:
        torch.testing.assert_close(back, wave, atol=1e-5, rtol=0)
    else:
        # without centring the first and last n_fft - hop samples lie under one window only (the very first
        # under its zero): they come back less precisely; the model pads so that it never uses them
        edge = n_fft - hop
        torch.testing.assert_close(back[..., edge:-edge], wave[..., edge:-edge], atol=1e-5, rtol=0)
        torch.testing.assert_close(back[..., 1:], wave[..., 1:], atol=1e-2, rtol=0)


@pytest.mark.parametrize("n_fft, hop", [(8192, 1024), (2048, 512), (512, 128)])
def test_centred_inverse_is_torch_istft_bit_for_bit(n_fft, hop):
    """The reference MDX23C code (ZFTurbo's TFC_TDF_net.stft.inverse) inverts with torch.istft(center=True):
    a centred ISTFT must give exactly its result, for the STFT of a signal and for an arbitrary estimate."""
    generator = torch.Generator().manual_seed(3)
    wave = torch.randn(1, 2, 12 * hop + 5, generator=generator)
    spec = STFT(n_fft, hop, True)(wave)
    estimate = torch.randn(spec.shape, dtype=torch.complex64, generator=generator)
    for complex_spec in (spec, estimate):
        for length in (wave.shape[-1], hop * (spec.shape[-1] - 1)):
            ours = ISTFT(n_fft, hop, True)(complex_spec, length)
            expected = torch.istft(complex_spec[0], n_fft, hop, window=torch.hann_window(n_fft), center=True,
                                   length=length)
            assert torch.equal(ours[0], expected)


def test_stft_matches_numpy_reference():
    """Periodic Hann, no normalisation, frames of n_fft samples every hop (librosa/center=False semantics)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(4096).astype(np.float32)
    n_fft, hop = 1024, 512
    spec = STFT(n_fft, hop, center=False)(torch.from_numpy(x)[None, None])[0, 0].numpy()
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = np.stack([x[t * hop: t * hop + n_fft] * window for t in range(1 + (4096 - n_fft) // hop)], axis=1)
    np.testing.assert_allclose(spec, np.fft.rfft(frames, axis=0), atol=2e-3, rtol=1e-4)


def test_complex_as_channels_order_and_inverse():
    spec = torch.complex(torch.arange(8.0).reshape(1, 2, 2, 2), -torch.arange(8.0).reshape(1, 2, 2, 2))
    image = ComplexAsChannels()(spec)
    assert image.shape == (1, 4, 2, 2)
    torch.testing.assert_close(image[0, 0], spec[0, 0].real)  # Re L
    torch.testing.assert_close(image[0, 1], spec[0, 0].imag)  # Im L
    torch.testing.assert_close(image[0, 2], spec[0, 1].real)  # Re R
    torch.testing.assert_close(image[0, 3], spec[0, 1].imag)  # Im R
    torch.testing.assert_close(ComplexAsChannels().inverse(image.unsqueeze(1), 2)[:, 0], spec)


def test_kept_bins_are_cropped_and_zero_filled_back():
    """TFC-TDF-UNet v3 keeps the lowest bins only: the inverse puts zeros above them."""
    spec = torch.randn(1, 2, 9, 3, dtype=torch.complex64)
    image = ComplexAsChannels(bins=6)(spec)
    assert image.shape == (1, 4, 6, 3)
    back = ComplexAsChannels(bins=6).inverse(image.unsqueeze(1), 9)[:, 0]
    torch.testing.assert_close(back[:, :, :6], spec[:, :, :6])
    assert torch.count_nonzero(back[:, :, 6:]) == 0


def test_magnitude_framing_keeps_mixture_phase():
    spec = torch.randn(1, 2, 5, 3, dtype=torch.complex64)
    mags = MagnitudeFraming()(spec)
    back = MagnitudeFraming().inverse(mags.unsqueeze(1), 5, spec)[:, 0]
    torch.testing.assert_close(back, spec, atol=1e-5, rtol=1e-5)


class PassThrough(nn.Module):
    time_factor = 1

    def forward(self, x):
        return x.unsqueeze(1)


@pytest.mark.parametrize("name", ["tdc-17", "tfc-tdf-small", "tfc-tdf-large", "tfc-tdf-small-mag"])
@pytest.mark.parametrize("samples", [1, 300, 2048, 44_100, 100_001])
def test_padding_and_framing_reconstruct_any_length(name, samples):
    """With the U-Net replaced by the identity (mask 1 for the magnitude model) the mixture comes back."""
    torch.manual_seed(0)
    model = zoo_core.load(name, init=True).eval()
    model.network = PassThrough() if model.representation == "cac" else _OnesMask()
    mixture = torch.randn(1, 2, samples)
    left, right = model.padding(samples)
    frames = (samples + left + right - (0 if model.center else model.n_fft)) // model.hop_length + 1
    assert frames % model.time_factor == 0
    with torch.inference_mode():
        out = model(mixture)
    assert out.shape == (1, 1, 2, samples)
    torch.testing.assert_close(out[:, 0], mixture, atol=1e-4, rtol=0)


class _OnesMask(nn.Module):
    def forward(self, x):
        return torch.ones_like(x).unsqueeze(1)
