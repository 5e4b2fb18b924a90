"""What the zoo says about itself: its help, its package description, where its SDR figures come from, and the
suggestion for a mistyped model name."""

from __future__ import annotations

import sys
from pathlib import Path

from click.testing import CliRunner

from zoo_core.cli import main

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
# what the zoo holds and writes (registry.toml, plugins/, zoo_core/export/), not only the 2020 U-Nets
WHAT_IT_IS = ("ISMIR 2020", "MDX23C", "plugin", "TorchScript", "AOTInductor", "ONNX")


def _zoo(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_help_describes_the_zoo_as_it_is():
    code, out, _ = _zoo("--help")
    text = " ".join(out.split())  # click wraps the paragraph
    assert code == 0 and all(words in text for words in WHAT_IT_IS), text


def test_package_description_and_keywords_describe_the_zoo_as_it_is():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert all(words in project["description"] for words in WHAT_IT_IS), project["description"]
    assert {"mdx23c", "onnx", "aotinductor"} <= set(project["keywords"])


def test_list_help_names_the_set_each_sdr_was_measured_on():
    code, out, _ = _zoo("list", "--help")
    text = " ".join(out.split())
    # registry.toml: the ISMIR 2020 figures are on MUSDB18's test set; mdx23c-musdb18's 9.23 dB is ZFTurbo's
    # MUSDB18-HQ test figure
    assert code == 0 and "MUSDB18 test for the ISMIR 2020 models" in text
    assert "MUSDB18-HQ test for mdx23c-musdb18" in text


def test_a_name_in_the_wrong_case_suggests_the_right_one_first():
    code, _, err = _zoo("info", "TDC-17")
    assert code == 2 and err.startswith("error: unknown model 'TDC-17'; did you mean tdc-17,")
    code, _, err = _zoo("separate", "x.wav", "-m", "TFC-TDF-Large")
    assert code == 2 and "did you mean tfc-tdf-large," in err
    code, _, err = _zoo("info", "tfc-tdf-lrge")  # a misspelling still gets the closest names
    assert "did you mean tfc-tdf-large" in err
