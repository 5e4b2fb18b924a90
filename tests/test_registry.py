"""registry.toml: schema checks with file/line/field errors, name resolution, and the listing commands."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import zoo_core
from zoo_core.cli import main
from zoo_core.errors import RegistryError, UnknownModelError
from zoo_core.registry import builtin_entries, entries_from_toml, reset_catalogue, resolve

LIST_FIELDS = {"name", "block", "parameters", "n_fft", "hop_length", "frames", "representation", "weights",
               "paper_sdr", "plugin"}


@pytest.fixture(autouse=True)
def _fresh_catalogue():
    reset_catalogue()
    yield
    reset_catalogue()


def run_cli(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def write_registry(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "extra.toml"
    path.write_text(text)
    return path


GOOD_EXTRA = """
[models.tiny-tdc]
block = "tdc"
architecture = { name = "unet", n_blocks = 3, sampling = "frequency" }
stft = { n_fft = 256, hop_length = 64, frames = 16, center = true }
"""


def test_builtin_registry_parses():
    entries = builtin_entries("unet") + builtin_entries("tfc-tdf-v3")
    assert len(entries) >= 9 and {e.architecture_name for e in entries} == {"unet", "tfc-tdf-v3"}
    large = next(e for e in entries if e.name == "tfc-tdf-large")
    assert large.default_variant == "paper" and set(large.variants) == {"paper", "epoch2007"}
    assert large.stft_for(large.variant("epoch2007")).hop_length == 1024
    assert large.stft_for(large.variant("paper")).hop_length == 2048


def test_list_json_has_every_model_with_required_fields():
    code, out, err = run_cli("list", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) >= 9
    for row in rows:
        assert LIST_FIELDS <= set(row)
        assert isinstance(row["parameters"], int)
    by_name = {r["name"]: r for r in rows}
    assert by_name["tfc-tdf-large"]["n_fft"] == 4096 and by_name["tfc-tdf-large"]["paper_sdr"] == 7.98
    assert by_name["tfc-tdf-small-mag"]["representation"] == "magnitude"


def test_list_filters_like_timm():
    code, out, _ = run_cli("list", "tfc*", "--json")
    names = [r["name"] for r in json.loads(out)]
    assert names == sorted(names) and names and all(n.startswith("tfc") for n in names)
    assert zoo_core.list_models(["tdc*", "tdf*"]) == ["tdc-17", "tdc-rnn", "tdf-17"]
    code, out, _ = run_cli("list", "nothing*")
    assert code == 0 and "no model matches" in out


def test_list_table_fits_80_columns_with_whole_numbers(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run_cli("list")
    assert code == 0
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    header = lines[0].split()
    assert header[:3] == ["name", "network", "parameters"] and header[-2:] == ["weights", "SDR"]
    row = next(line.split() for line in lines if line.startswith("tfc-tdf-large "))
    assert row[1:3] == ["unet/tfc-tdf", "2,232,132"] and row[-1] == "7.98"
    longest = max(zoo_core.list_models(), key=len)  # whole, however long the longest name is
    assert any(line.split()[0] == longest for line in lines[1:] if line.strip())
    if "stft" in header:  # it gives way (zoo info shows it) when the longest names leave no room
        assert row[3] == "4096/2048"


def test_list_table_shows_stems_and_plugins_when_wide(monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    code, out, _ = run_cli("list")
    header = out.splitlines()[0].split()
    assert code == 0 and "plugin" in header and "stems" in header
    assert next(line for line in out.splitlines() if line.startswith("tdc-17 ")).split()[-1] == "unet"


def test_info_shows_entry_and_resolved_architecture():
    code, out, err = run_cli("info", "tfc-tdf-large")
    assert code == 0, err
    assert "2,232,132" in out and "paper (default)" in out
    assert re.search(r"^\s*0\s+128\s+2,048\s", out, re.M)  # the levels table: level 0 is 128 frames x 2048 bins
    assert '"middle": ' not in out and 'middle {"frames": 8, "bins": 128' in out
    assert "architecture     unet (plugin unet)" in out
    code, out, _ = run_cli("info", "tfc-tdf-17", "--json")
    data = json.loads(out)
    arch = data["architecture"]
    assert [(lvl["frames"], lvl["bins"]) for lvl in arch["levels"]][:3] == [(64, 1024), (32, 512), (32, 256)]
    assert arch["time_down_levels"] == [0, 2, 4, 6] and arch["parameters"] == 1_930_840
    assert data["entry"]["stft"]["center"] is False


def test_unknown_model_is_one_line_with_suggestions_and_exit_2():
    code, out, err = run_cli("info", "tfc-tdf-lrge")
    assert code == 2
    assert err.strip().count("\n") == 0
    assert err.startswith("error: unknown model 'tfc-tdf-lrge'") and "tfc-tdf-large" in err
    with pytest.raises(UnknownModelError, match="no weights variant 'best'"):
        resolve("tdc-17:best")


def test_name_with_variant_resolves_and_carries_stft():
    entry, variant = resolve("tfc-tdf-large:epoch2007")
    assert variant.layout == "lightning"
    model = zoo_core.load("tfc-tdf-large:epoch2007", init=True)
    assert (model.hop_length, model.center) == (1024, True)
    assert zoo_core.load("tfc-tdf-large", init=True).hop_length == 2048


def test_extra_registry_adds_models(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_REGISTRY", str(write_registry(tmp_path, GOOD_EXTRA)))
    assert "tiny-tdc" in zoo_core.list_models()
    assert zoo_core.get_entry("tiny-tdc").source.endswith("extra.toml")


@pytest.mark.parametrize(
    "text, expected",
    [
        ('[models.x]\nblock = "tdc"\nstft = { n_fft = "2048" }\n', r"extra.toml:3: models.x.stft.n_fft: expected an integer"),
        ('[models.x]\nblock = "tdc"\n\n[models.x.stft]\nn_fft = 2048\ncentre = true\n',
         r"extra.toml:6: models.x.stft.centre: unknown field \(did you mean 'center'\?\)"),
        ('[models.x]\nblock = "tdc"\ndefault_variant = "best"\n', r"extra.toml:3: models.x.default_variant: 'best' is not"),
        ('[models.x]\nblock = "tdc"\n', r"extra.toml:1: models.x.architecture: missing required field 'name'"),
        ('[models.x]\nblock = "tdc"\n[models.x.architecture]\nrepresentation = "phase"\n',
         r"extra.toml:4: models.x.architecture.representation: must be one of"),
        ('[models.x\nblock = "tdc"\n', r"extra.toml: invalid TOML: .*line 1"),
    ],
)
def test_malformed_registry_names_file_line_and_field(tmp_path, text, expected):
    with pytest.raises(RegistryError, match=expected):
        entries_from_toml(write_registry(tmp_path, text))


def test_malformed_registry_is_one_cli_line(tmp_path, monkeypatch):
    path = write_registry(tmp_path, '[models.x]\nblock = "tdc"\nstft = { hop_length = true }\n')
    monkeypatch.setenv("ZOO_REGISTRY", str(path))
    code, out, err = run_cli("list")
    assert code == 2
    assert err == f"error: {path}:3: models.x.stft.hop_length: expected an integer, got True\n"


def test_duplicate_model_name_is_an_error(tmp_path, monkeypatch):
    path = write_registry(tmp_path, GOOD_EXTRA.replace("tiny-tdc", "tdc-17"))
    monkeypatch.setenv("ZOO_REGISTRY", str(path))
    code, _, err = run_cli("list")
    assert code == 2 and "'tdc-17' is defined by both unet and" in err
