"""The peer separators the benchmark runs side by side with the paper's models, with initialised weights.

Weights cannot be downloaded here and compute does not depend on weight values, so both peers are built from
their packages' own classes in the configuration of the released models:

- UMX-HQ (``openunmix``): stereo BiLSTM, hidden size 512, n_fft 4096 / hop 1024, 16 kHz bandwidth; vocals
  target only, no Wiener post-filtering (``niter=0``), the separator's own STFT.
- HT-Demucs (``demucs``): ``HTDemucs`` with its default hyper-parameters (as the released ``htdemucs``), four
  sources, run through demucs' own ``apply_model`` with its default overlap and the released model's 7.8-s
  segment.

Install (never let pip touch torch; torchaudio has no build for every torch release):
``pip install --no-deps openunmix demucs einops julius lameenc``.
"""

from __future__ import annotations

import sys
import types
from fractions import Fraction
from typing import Callable

from torch import Tensor, nn

HTDEMUCS_SOURCES = ["drums", "bass", "other", "vocals"]
HTDEMUCS_SEGMENT = Fraction(39, 5)  # seconds: the released htdemucs' training segment, apply_model's default
UMX_HQ = {"hidden_size": 512, "n_fft": 4096, "n_hop": 1024, "bandwidth": 16000.0}


def _import_openunmix():
    """openunmix imports torchaudio at the top of modules that its separation path never calls.

    Benchmark-only shim: when torchaudio is missing (it has no build for this torch), an empty stand-in
    module lets the import succeed; anything that really needed torchaudio would fail loudly.
    """
    try:
        import torchaudio  # noqa: F401
    except ImportError:
        sys.modules["torchaudio"] = types.ModuleType("torchaudio")
    import openunmix.model
    import openunmix.utils

    return openunmix


def umx_hq() -> tuple[nn.Module, Callable[[Tensor], Tensor]]:
    """(model, separate): ``separate(mixture [1, 2, N]) -> vocals [1, 1, 2, N]``."""
    openunmix = _import_openunmix()
    max_bin = openunmix.utils.bandwidth_to_max_bin(44100.0, UMX_HQ["n_fft"], UMX_HQ["bandwidth"])
    vocals = openunmix.model.OpenUnmix(
        nb_bins=UMX_HQ["n_fft"] // 2 + 1, nb_channels=2, hidden_size=UMX_HQ["hidden_size"], max_bin=max_bin
    )
    separator = openunmix.model.Separator(
        {"vocals": vocals}, niter=0, n_fft=UMX_HQ["n_fft"], n_hop=UMX_HQ["n_hop"], nb_channels=2, sample_rate=44100.0
    ).eval()
    return separator, separator


def htdemucs() -> tuple[nn.Module, Callable[[Tensor], Tensor]]:
    """(model, separate): ``separate(mixture [1, 2, N]) -> [1, 4, 2, N]`` through ``demucs.apply.apply_model``."""
    from demucs.apply import apply_model
    from demucs.htdemucs import HTDemucs

    model = HTDemucs(sources=HTDEMUCS_SOURCES, segment=HTDEMUCS_SEGMENT).eval()
    return model, lambda mixture: apply_model(model, mixture, progress=False)


PEERS = {"umx-hq": umx_hq, "htdemucs": htdemucs}
