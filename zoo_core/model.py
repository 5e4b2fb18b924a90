"""`SeparationModel`: waveform in, stems out, and the spectrogram API that says what the network sees.

``model(mixture)`` takes ``[batch, 2, samples]`` float at ``model.sample_rate`` and returns
``[batch, stems, 2, samples]`` with the stems named in ``model.stems`` (one, the target, for the paper's models).
Any number of samples works: the model pads to a length the network accepts and crops back.

The pipeline is written once, here, as three public steps that everything else (training, the authors'
procedure, the exporters, the C++ host's contract) composes:

    image = model.to_image(waveform)                  # STFT, then the framing: [B, channels, bins, frames]
    estimate = model.core(image)                      # the network and its output rule: [B, stems, channels, bins, frames]
    stems = model.from_image(estimate, length, spec)  # inverse framing and inverse STFT: [B, stems, 2, length]

``model.padding(samples)`` says how a waveform is padded first so that its frame count suits the network, and
``StftSettings.samples(frames)`` how many samples a number of frames spans. What the network sees is defined by
the STFT settings (n_fft, hop, centring, periodic Hann window, the lowest ``bins`` bins) and the representation
(complex-as-channels or magnitude, see `zoo_core.framing`); an exported core carries exactly these in its
metadata.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import List, Optional, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from .errors import ConfigError
from .framing import ESTIMATIONS, ISTFT, REPRESENTATIONS, STFT, make_framing


@dataclass(frozen=True)
class StftSettings:
    """The framing of a model's spectrogram: transform, training window and the bins the network sees."""

    n_fft: int = 2048
    hop_length: int = 1024
    frames: int = 128  # frames per training window
    center: bool = True
    sample_rate: int = 44100
    bins: Optional[int] = None  # the lowest bins the network sees; None: all n_fft // 2 + 1

    def validate(self) -> None:
        n = self.n_fft
        if not isinstance(n, int) or n < 16 or n & (n - 1):
            raise ConfigError(f"n_fft must be a power of two (>= 16), got {n}")
        if not isinstance(self.hop_length, int) or not 0 < self.hop_length <= n:
            raise ConfigError(f"hop_length must be in 1..n_fft ({n}), got {self.hop_length}")
        if not isinstance(self.sample_rate, int) or self.sample_rate <= 0:
            raise ConfigError(f"sample_rate must be a positive integer, got {self.sample_rate}")
        if not isinstance(self.frames, int) or self.frames < 1:
            raise ConfigError(f"frames must be a positive integer, got {self.frames}")
        if self.bins is not None and not (isinstance(self.bins, int) and 0 < self.bins <= self.total_bins):
            raise ConfigError(f"bins must be in 1..{self.total_bins} (n_fft/2 + 1), got {self.bins}")

    @property
    def total_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def kept_bins(self) -> int:
        return self.total_bins if self.bins is None else self.bins

    def samples(self, frames: int) -> int:
        """Samples spanned by ``frames`` STFT frames (a centred STFT adds n_fft/2 of reflection on each side)."""
        span = self.hop_length * (frames - 1)
        return span if self.center else span + self.n_fft

    @property
    def window_samples(self) -> int:
        """Samples of one training window of ``frames`` frames."""
        return self.samples(self.frames)

    def as_dict(self) -> dict:
        return asdict(self)


class SeparationModel(nn.Module):
    """A network on a spectrogram image, with the STFT, framing and padding around it.

    ``network`` maps ``[B, channels, bins, frames]`` to ``[B, len(stems), channels, bins, frames]`` and has an
    int attribute ``time_factor``: it accepts frame counts that are multiples of it.
    """

    def __init__(
        self,
        network: nn.Module,
        stft: StftSettings,
        stems: Sequence[str] = ("vocals",),
        representation: str = "cac",
        estimation: str = "mapping",
    ):
        super().__init__()
        stft.validate()
        if representation not in REPRESENTATIONS:
            raise ConfigError(f"representation must be one of {REPRESENTATIONS}, got {representation!r}")
        if estimation not in ESTIMATIONS:
            raise ConfigError(f"estimation must be one of {ESTIMATIONS}, got {estimation!r}")
        if not stems or len(set(stems)) != len(stems):
            raise ConfigError(f"stems must be distinct names, got {list(stems)}")
        time_factor = getattr(network, "time_factor", None)
        if not isinstance(time_factor, int) or time_factor < 1:
            raise ConfigError(f"{type(network).__name__} must have a positive int attribute time_factor")
        self.settings = stft
        self.representation = representation
        self.estimation = estimation
        self.stems: List[str] = list(stems)
        self.sample_rate: int = stft.sample_rate
        self.n_fft: int = stft.n_fft
        self.hop_length: int = stft.hop_length
        self.center: bool = stft.center
        self.time_factor: int = time_factor
        # a centred STFT reflects n_fft/2 samples at each end, so it needs more than that: at least this many frames
        # (binds only networks that take very few frames, time_factor 1: the band-split RoFormers' short tails)
        self.shortest_frames: int = stft.n_fft // (2 * stft.hop_length) + 2 if stft.center else 1
        self.masking: bool = estimation == "masking"
        self.stft = STFT(stft.n_fft, stft.hop_length, stft.center)
        self.istft = ISTFT(stft.n_fft, stft.hop_length, stft.center)
        self.framing = make_framing(representation, stft.bins)
        self.unet = network

    # ------------------------------------------------------------------------------ the spectrogram API

    def to_image(self, waveform: Tensor) -> Tensor:
        """``[B, 2, N]`` waveform → ``[B, channels, bins, frames]``: what the network sees."""
        return self.framing(self.stft(waveform))

    def core(self, image: Tensor) -> Tensor:
        """The network and its output rule: ``[B, channels, bins, T]`` → ``[B, stems, channels, bins, T]``.

        Masking models multiply the network's output by the input image; mapping models output the estimate.
        ``T`` must be a multiple of ``time_factor``.
        """
        estimate = self.unet(image)
        if self.masking:
            estimate = estimate * image.unsqueeze(1)
        return estimate

    def from_image(self, estimate: Tensor, length: int, mixture_spec: Optional[Tensor] = None) -> Tensor:
        """``[B, stems, channels, bins, T]`` → waveforms ``[B, stems, 2, length]``.

        ``mixture_spec`` (the complex STFT of the mixture) gives magnitude models their phase; mapping
        complex-as-channels models do not need it.
        """
        batch, stems = estimate.shape[0], estimate.shape[1]
        spec = self.framing.inverse(estimate, self.n_fft // 2 + 1, mixture_spec)
        waveform = self.istft(spec.reshape(batch * stems, spec.shape[2], spec.shape[3], spec.shape[4]), length)
        return waveform.reshape(batch, stems, waveform.shape[1], length)

    def training_segment(self) -> int:
        """The longest input whose padded STFT has exactly the training window's frame count."""
        return self.settings.window_samples - 2 * self.padding(1)[0]

    def padding(self, samples: int) -> List[int]:
        """[left, right] zero padding that gives a frame count the network accepts and covers every sample."""
        hop = self.hop_length
        if self.center:
            left = 0
            needed = (samples + hop - 1) // hop + 1  # frames so that hop * (frames - 1) >= samples
        else:
            # no centring: lead with n_fft - hop zeros so the first sample is under a full window overlap
            left = self.n_fft - hop
            span = samples + 2 * left - self.n_fft
            needed = (max(span, 0) + hop - 1) // hop + 1
        frames = max(needed, self.time_factor, self.shortest_frames)
        frames = (frames + self.time_factor - 1) // self.time_factor * self.time_factor
        total = hop * (frames - 1) if self.center else self.n_fft + hop * (frames - 1)
        return [left, total - samples - left]

    def forward(self, mixture: Tensor) -> Tensor:
        samples = mixture.shape[-1]
        pad = self.padding(samples)
        padded = F.pad(mixture, pad)
        spec = self.stft(padded)
        estimate = self.core(self.framing(spec))
        waveform = self.from_image(estimate, padded.shape[-1], spec)
        return waveform[..., pad[0] : pad[0] + samples]
