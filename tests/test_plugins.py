"""Plugins are found through real entry-point metadata; a broken one is reported and skipped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

import zoo_core
from zoo_core.cli import main
from zoo_core.errors import PluginError
from zoo_core.registry import get_catalogue, reset_catalogue

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_PLUGIN = ROOT / "examples" / "third-party-plugin"


@pytest.fixture(autouse=True)
def _fresh_catalogue():
    reset_catalogue()
    yield
    reset_catalogue()


def install_fake_plugin(root: Path, dist: str, entry_name: str, module: str, source: str) -> None:
    """A module plus a dist-info declaring it in svs-zoo's entry-point group, as pip would leave them."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[svs_zoo.plugins]\n{entry_name} = {module}\n")


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def run_cli(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_each_builtin_family_is_one_plugin_with_its_blocks_and_models():
    cat = get_catalogue()
    families = {  # plugin: (its architectures, its blocks)
        "unet": ({"unet"}, {"tdf", "tdc", "tfc", "tfc-tdf", "tdc-rnn", "tfc-rnn"}),
        "tfc-tdf-v3": ({"tfc-tdf-v3"}, {"tfc-tdf-v3"}),
        "roformer": ({"bs-roformer", "mel-band-roformer"}, set()),
    }
    for plugin, (architectures, blocks) in families.items():
        status = cat.plugins.statuses[plugin]
        assert status.distribution == "svs-zoo" and status.loaded
        assert {name for name, block in cat.blocks.items() if block.plugin == plugin} == blocks
        assert {name for name, arch in cat.architectures.items() if arch.plugin == plugin} == architectures
        models = {name for name, entry in cat.models.items() if entry.source == plugin}
        assert models and all(cat.models[name].architecture_name in architectures for name in models)
    assert {entry.source for entry in cat.models.values()} == set(families)


def test_core_never_imports_a_block_plugin():
    code = "import zoo_core, zoo_core.registry, zoo_core.cli, sys; print([m for m in sys.modules if m.startswith('zoo_t')])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_broken_import_is_reported_and_the_rest_load(plugin_dir):
    install_fake_plugin(plugin_dir, "broken-plugin", "broken", "zoo_broken_plugin", "import no_such_module\n")
    code, out, err = run_cli("plugins")
    assert code == 0
    assert "broken" in out and "import failed" in out and "no_such_module" in out
    code, out, err = run_cli("list")
    assert code == 0
    assert "tfc-tdf-large" in out
    assert "warning: plugin 'broken' not loaded: import failed" in err


def test_malformed_block_is_reported_and_skipped(plugin_dir):
    install_fake_plugin(plugin_dir, "odd-plugin", "odd", "zoo_odd_plugin", """
        from zoo_core import BlockType, hookimpl
        from zoo_unet.layers import DenseConvStack

        @hookimpl
        def register_blocks(register):
            register(BlockType(name="Bad Name", build=lambda ctx: None))
            register(BlockType(name="fine", build=lambda ctx: DenseConvStack(ctx.in_channels, ctx.out_channels, 1)))
            register("not a block")
    """)
    cat = get_catalogue()
    assert "fine" in cat.blocks
    assert "Bad Name" not in cat.blocks
    assert "malformed block" in cat.plugins.statuses["odd"].error


def test_two_plugins_claiming_one_block_name_is_an_error_naming_both(plugin_dir):
    install_fake_plugin(plugin_dir, "copycat", "copycat", "zoo_copycat_plugin", """
        from zoo_core import BlockType, hookimpl
        from zoo_unet.tdc import build_tdc

        @hookimpl
        def register_blocks(register):
            register(BlockType(name="tdc", build=build_tdc, sampling="frequency"))
    """)
    with pytest.raises(PluginError, match=r"'tdc'.*plugin 'unet' \(svs-zoo .*\).*plugin 'copycat' \(copycat 1.0\)"):
        zoo_core.list_models()
    code, out, err = run_cli("list")
    assert code == 2
    assert err.count("\n") == 1 and "copycat" in err and "ZOO_DISABLE_PLUGINS" in err


def test_disabling_a_family_plugin_removes_its_models_with_no_orphan(monkeypatch):
    monkeypatch.setenv("ZOO_DISABLE_PLUGINS", "unet")
    cat = get_catalogue()
    assert "tdc" not in cat.blocks and "unet" not in cat.architectures
    assert cat.plugins.statuses["unet"].disabled
    assert "tdc-17" not in zoo_core.list_models() and "mdx23c-vocals" in zoo_core.list_models()
    assert cat.hidden == {}  # its models went with it: none is left behind as unavailable
    code, out, err = run_cli("info", "tdc-17")
    assert code == 2 and "unknown model 'tdc-17'" in err


def test_unknown_hook_is_caught_by_check_pending(plugin_dir):
    install_fake_plugin(plugin_dir, "typo-plugin", "typo", "zoo_typo_plugin", """
        from zoo_core import hookimpl

        @hookimpl
        def register_block(register):  # missing the final "s"
            pass
    """)
    status = get_catalogue().plugins.statuses["typo"]
    assert "register_block" in status.error and not status.loaded
    assert get_catalogue().plugins.manager.get_plugin("typo") is None


def test_hook_that_raises_is_reported(plugin_dir):
    install_fake_plugin(plugin_dir, "crashy", "crashy", "zoo_crashy_plugin", """
        from zoo_core import hookimpl

        @hookimpl
        def register_models(register):
            raise RuntimeError("database unreachable")
    """)
    status = get_catalogue().plugins.statuses["crashy"]
    assert status.error == "register_models failed: RuntimeError: database unreachable"
    assert "tdc-17" in zoo_core.list_models()


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory):
    """The example plugin installed by pip (real wheel build, real dist-info) into its own folder."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(EXAMPLE_PLUGIN)],
        check=True, capture_output=True,
    )
    return target


def _run_with(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(args, capture_output=True, text=True, env=env)


def test_third_party_plugin_appears_everywhere(installed_example):
    assert (installed_example / "svs_zoo_plain_tfc_tdf-0.1.0.dist-info" / "entry_points.txt").exists()
    zoo = (sys.executable, "-m", "zoo_core.cli")  # the `zoo` command, whether or not the venv is on PATH
    listed = _run_with(installed_example, *zoo, "list", "plain*", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["name"] for r in rows] == ["plain-tfc-tdf-mdx", "plain-tfc-tdf-small"]
    assert all(r["plugin"] == "plain-tfc-tdf" and r["block"] == "plain-tfc-tdf" for r in rows)
    assert [r["architecture"] for r in rows] == ["multiplicative-unet", "unet"]
    assert rows[0]["architecture_plugin"] == "plain-tfc-tdf" and rows[1]["architecture_plugin"] == "unet"
    info = _run_with(installed_example, *zoo, "info", "plain-tfc-tdf-small")
    assert info.returncode == 0 and "plain-tfc-tdf" in info.stdout
    plugins = _run_with(installed_example, *zoo, "plugins", "--json")
    entry = [p for p in json.loads(plugins.stdout)["plugins"] if p["name"] == "plain-tfc-tdf"][0]
    assert entry["distribution"] == "svs-zoo-plain-tfc-tdf" and entry["version"] == "0.1.0"
    assert entry["hooks"] == ["register_architectures", "register_blocks", "register_models"]
    assert entry["architectures"] == ["multiplicative-unet"]
    assert entry["models"] == ["plain-tfc-tdf-mdx", "plain-tfc-tdf-small"]


def test_third_party_model_builds_scripts_and_runs(installed_example):
    code = textwrap.dedent("""
        import json, torch, zoo_core
        model = zoo_core.load("plain-tfc-tdf-small", init=True).eval()
        x = torch.randn(1, 2, 50000)
        with torch.inference_mode():
            y = model(x)
            z = torch.jit.script(model)(x)
        print(json.dumps({"shape": list(y.shape), "params": zoo_core.count_parameters(model),
                          "diff": float((y - z).abs().max()), "finite": bool(torch.isfinite(y).all())}))
    """)
    done = _run_with(installed_example, sys.executable, "-W", "ignore", "-c", code)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["shape"] == [1, 1, 2, 50000] and result["finite"]
    assert result["diff"] < 1e-5
    # 7 blocks of 3 plain 3x3 convs + TDF(F/8, no bias): counted independently from its layer definition
    assert result["params"] == _plain_tfc_tdf_small_parameters()


def test_third_party_architecture_builds_scripts_separates_and_exports(installed_example, tmp_path):
    """The example's own skeleton goes through everything a built-in architecture does: build, TorchScript,
    separation of a file (one file per stem) and the TorchScript export with its checks."""
    code = textwrap.dedent(f"""
        import json, numpy, soundfile, torch, zoo_core
        from zoo_core.separation import separate_file
        from zoo_core.export.torchscript import export_torchscript
        model = zoo_core.load("plain-tfc-tdf-mdx", init=True).eval()
        x = torch.randn(1, 2, 30000)
        with torch.inference_mode():
            y = model(x)
            z = torch.jit.script(model)(x)
        source = "{tmp_path}/mix.wav"
        soundfile.write(source, numpy.random.default_rng(0).standard_normal((20000, 2)).astype("float32") * 0.1, 44100)
        written = separate_file(model, source, "{tmp_path}/out")
        exported = export_torchscript(model, zoo_core.get_entry("plain-tfc-tdf-mdx"), __import__("pathlib").Path("{tmp_path}/m.ts.pt"))
        print(json.dumps({{"shape": list(y.shape), "params": zoo_core.count_parameters(model),
                          "diff": float((y - z).abs().max()), "outputs": sorted(written.outputs),
                          "frames": soundfile.info(written.outputs["vocals"]).frames,
                          "checks": all(c.passed for c in exported.checks)}}))
    """)
    done = _run_with(installed_example, sys.executable, "-W", "ignore", "-c", code)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["shape"] == [1, 1, 2, 30000] and result["diff"] < 1e-5
    assert result["outputs"] == ["accompaniment", "vocals"] and result["frames"] == 20000
    assert result["checks"]
    assert result["params"] == _plain_tfc_tdf_mdx_parameters()


def _plain_tfc_tdf_mdx_parameters() -> int:
    """Counted from the example's layer definitions: 1x1 first conv + BN; per level a block of 2 plain 3x3
    convs (+BN) and a TDF (F -> F/8 -> F, no bias, BN affine), a 2x2 strided conv (+BN) adding 16 channels;
    mirrored transposed convs; a 1x1 last conv."""

    def block(c: int, bins: int) -> int:
        return 2 * (c * c * 9 + c + 2 * c) + 2 * bins * (bins // 8) + 2 * (2 * c)

    total = 4 * 16 + 16 + 2 * 16
    channels, bins = [16, 32, 48], [1024, 512, 256]
    for c, f in zip(channels, bins):
        total += 2 * block(c, f)  # encoder and decoder block of the level
        total += 2 * c * (c + 16) * 4 + 3 * (c + 16) + 3 * c  # 2x2 kernels down and up, each bias + BN
    total += block(64, 128)  # middle
    return total + 16 * 4 + 4


def _plain_tfc_tdf_small_parameters() -> int:
    c, total = 24, 0
    total += 4 * c * 2 + c + 2 * c  # first conv + BN
    levels = [(1024, "enc"), (512, "enc"), (256, "enc"), (128, "mid"), (256, "dec"), (512, "dec"), (1024, "dec")]
    for bins, where in levels:
        cin = 2 * c if where == "dec" else c
        convs = (cin * c * 9 + c + 2 * c) + 2 * (c * c * 9 + c + 2 * c)
        units = bins // 8
        tdf = bins * units + units * bins + 2 * (2 * c)
        total += convs + tdf
    total += 6 * (c * c * 4 + c + 2 * c)  # three down- and three up-sampling layers (2x2) + BN
    total += c * 4 * 2 + 4  # final conv
    return total


def test_info_shows_what_any_architecture_describes_and_export_refuses_what_it_declares(plugin_dir, tmp_path):
    """A plugin architecture reports its own structure (`describe`: per-stage records, scalars) and declares a
    format its networks cannot take (`unsupported`): `zoo info` shows the report whatever its keys, `zoo export`
    refuses the declared format in one line before any work."""
    install_fake_plugin(plugin_dir, "staged-plugin", "staged", "zoo_staged_plugin", """
        from torch import nn
        from zoo_core import Architecture, hookimpl

        class Staged(nn.Module):
            time_factor = 1

            def __init__(self, ctx):
                super().__init__()
                self.stems = ctx.stems
                self.conv = nn.Conv2d(ctx.in_channels, ctx.in_channels * ctx.stems, 1)

            def forward(self, image):
                batch, channels, bins, frames = image.shape
                return self.conv(image).reshape(batch, self.stems, channels, bins, frames)

        @hookimpl
        def register_architectures(register):
            register(Architecture("staged", lambda ctx: Staged(ctx), uses_blocks=False,
                                  describe=lambda net: {"levels": [{"stage": "in", "width": 4}, {"stage": "out", "width": 8}],
                                                        "subbands": 2},
                                  unsupported={"onnx": "this skeleton needs an operator ONNX lacks"}))

        @hookimpl
        def register_models(register):
            register({"name": "staged-1", "architecture": {"name": "staged"}, "description": "one 1x1 conv"})
    """)
    code, out, err = run_cli("info", "staged-1")
    assert code == 0, err
    lines = [line.rstrip() for line in out.splitlines()]  # a table pads its title to its width
    assert "  network          time_factor 1, subbands 2" in lines
    rows = [line.split() for line in lines[lines.index("levels") + 1:] if line.strip()][:3]
    assert rows == [["stage", "width"], ["in", "4"], ["out", "8"]]
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    code, _, err = run_cli("export", "staged-1", "--init", "--format", "onnx", "-o", str(out_dir / "s.onnx"))
    assert code == 1
    assert err.strip().splitlines() == [
        "error: staged-1 cannot be exported with --format onnx: this skeleton needs an operator ONNX lacks"]
    assert list(out_dir.iterdir()) == []


def test_a_declared_refusal_must_name_an_export_format_and_say_why_in_one_line():
    from zoo_core import Architecture, BlockType
    from zoo_core.errors import ConfigError
    from zoo_unet.tdc import build_tdc

    with pytest.raises(ConfigError, match="unsupported names 'tflite'; export formats are torchscript, aoti, onnx"):
        BlockType(name="tdc-a", build=build_tdc, unsupported={"tflite": "no such format here"}).validate()
    with pytest.raises(ConfigError, match=r"unsupported\['onnx'\] must be one line saying why"):
        Architecture("net-b", build=lambda ctx: None, unsupported={"onnx": "two\nlines"}).validate()
    BlockType(name="tdc-c", build=build_tdc, unsupported={"aoti": "a GRU's length is fixed"}).validate()
