"""An architecture that TorchScript cannot compile exports by tracing when it declares ``torchscript="trace"``."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch
from click.testing import CliRunner

from zoo_core import Architecture
from zoo_core.cli import main
from zoo_core.errors import ConfigError
from zoo_core.export.inspect import load_torchscript
from zoo_core.registry import reset_catalogue

from test_plugins import install_fake_plugin

# A per-bin gain computed with a starred assignment and a generator expression: plain Python that
# torch.jit.script refuses, and that a trace records as tensor operations.
PLUGIN = """
    import torch
    from torch import nn
    from zoo_core import Architecture, hookimpl

    class Gains(nn.Module):
        time_factor = 1

        def __init__(self, ctx):
            super().__init__()
            self.stems = ctx.stems
            self.mix = nn.Conv2d(ctx.in_channels, ctx.in_channels * ctx.stems, 1)

        def forward(self, image):
            *lead, bins, frames = image.shape
            gains = sum(torch.sigmoid(image[:, k::2].mean(1, keepdim=True)) for k in range(2))
            out = self.mix(image * gains)
            return out.reshape(lead[0], self.stems, lead[1], bins, frames)

    class Pinned(Gains):
        def forward(self, image):
            return super().forward(image) + torch.zeros(1, device=image.device)  # a trace records the device

    def build(ctx):
        return Gains(ctx)

    @hookimpl
    def register_architectures(register):
        register(Architecture("gains-traced", build, uses_blocks=False, torchscript="trace"))
        register(Architecture("gains-scripted", build, uses_blocks=False))
        register(Architecture("gains-pinned", lambda ctx: Pinned(ctx), uses_blocks=False, torchscript="trace"))

    @hookimpl
    def register_models(register):
        stft = {"n_fft": 512, "hop_length": 128, "frames": 32}
        register({"name": "gains-t", "architecture": {"name": "gains-traced"}, "stft": stft})
        register({"name": "gains-s", "architecture": {"name": "gains-scripted"}, "stft": stft})
        register({"name": "gains-p", "architecture": {"name": "gains-pinned"}, "stft": stft})
"""


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    install_fake_plugin(tmp_path, "gains-plugin", "gains", "zoo_gains_plugin", PLUGIN)
    reset_catalogue()
    yield tmp_path
    reset_catalogue()


def run_cli(*args: str):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def test_untraceable_architecture_exports_by_trace_and_separates_like_eager(plugin, tmp_path):
    """The traced file (`zoo separate --artifact`) against the eager model with the same weights
    (`zoo separate -m`), on a 1.5 s noise mixture that spans several segments of different lengths."""
    import zoo_gains_plugin
    from zoo_core import NetworkContext

    torch.manual_seed(0)
    network = zoo_gains_plugin.Gains(NetworkContext(in_channels=4, bins=257, frames=32, stems=1))
    torch.save(network.state_dict(), tmp_path / "gains.pt")
    mixture = tmp_path / "mix.wav"
    audio = 0.1 * np.random.default_rng(1).standard_normal((66150, 2)).astype("float32")
    soundfile.write(mixture, audio, 44100, subtype="FLOAT")

    assert run_cli("import", tmp_path / "gains.pt", "--model", "gains-t")[0] == 0
    code, _, err = run_cli("export", "gains-t", "-o", tmp_path / "gains-t.ts.pt")
    assert code == 0, err
    module, metadata = load_torchscript(tmp_path / "gains-t.ts.pt")
    assert metadata["network"] == "traced"
    assert module.stems() == ["vocals", "accompaniment"]

    segment = ["--segment", "0.5", "--bits", "float", "-q"]
    code, _, err = run_cli("separate", mixture, "-m", "gains-t", "-o", tmp_path / "eager", *segment)
    assert code == 0, err
    code, _, err = run_cli("separate", mixture, "--artifact", tmp_path / "gains-t.ts.pt", "-o", tmp_path / "traced",
                           *segment)
    assert code == 0, err
    eager = sorted((tmp_path / "eager").rglob("*.wav"))
    traced = sorted((tmp_path / "traced").rglob("*.wav"))
    assert [p.name for p in eager] == [p.name for p in traced] == ["accompaniment.wav", "vocals.wav"]
    for ours, theirs in zip(traced, eager):
        a, _ = soundfile.read(ours, dtype="float32")
        b, _ = soundfile.read(theirs, dtype="float32")
        assert a.shape == b.shape == audio.shape
        assert np.abs(a - b).max() <= 1e-5 * np.abs(b).max()


def test_unscriptable_architecture_without_trace_fails_in_one_line(plugin, tmp_path):
    (tmp_path / "exports").mkdir()
    code, _, err = run_cli("export", "gains-s", "--init", "-o", tmp_path / "exports" / "gains-s.ts.pt")
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("error: gains-s cannot be scripted: ") and 'torchscript="trace"' in err
    assert not list((tmp_path / "exports").iterdir())


def test_a_trace_that_pins_a_device_is_refused_in_one_line(plugin, tmp_path):
    """A traced file must run on CPU and CUDA alike: a device the trace recorded as a constant is refused."""
    (tmp_path / "exports").mkdir()
    code, _, err = run_cli("export", "gains-p", "--init", "-o", tmp_path / "exports" / "gains-p.ts.pt")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert err.startswith("error: gains-p's traced network creates a tensor on device 'cpu'") and "new_zeros" in err
    assert not list((tmp_path / "exports").iterdir())


def test_torchscript_mode_is_validated_in_one_line():
    expected = r"^architecture 'x': torchscript must be one of 'script', 'trace', got 'jit'$"
    with pytest.raises(ConfigError, match=expected):
        Architecture("x", build=lambda ctx: None, torchscript="jit").validate()
