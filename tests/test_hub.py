"""hubconf.py: torch.hub entries for every registered model, weights through the verified cache."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import zoo_core
from zoo_core.plugins import PluginSet
from zoo_core.registry import build_catalogue, list_models

ROOT = Path(__file__).resolve().parent.parent


def test_pretrained_entry_loads_the_authors_weights(weights_mirror: Path, monkeypatch):
    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(weights_mirror))
    model = torch.hub.load(str(ROOT), "tdc_17", source="local", pretrained=True)
    assert isinstance(model, zoo_core.SeparationModel) and not model.training
    assert model.provenance.model == "tdc-17" and model.provenance.variant == "top1"
    original = torch.load(weights_mirror / "cac_tdc_17_vocals_top1.pt", map_location="cpu", weights_only=True)
    state = model.network.state_dict()
    assert all(torch.equal(state[name], tensor) for name, tensor in original.items())
    top2 = torch.hub.load(str(ROOT), "tdc_17", source="local", variant="top2")
    assert top2.provenance.variant == "top2"


def test_untrained_entry_builds_initialised_parameters():
    model = torch.hub.load(str(ROOT), "tfc_tdf_small", source="local", pretrained=False)
    assert isinstance(model, zoo_core.SeparationModel) and not model.training
    assert model.provenance is None
    assert zoo_core.count_parameters(model) == zoo_core.count_parameters(zoo_core.load("tfc-tdf-small", init=True))
    with torch.no_grad():
        assert model(torch.zeros(1, 2, 3000)).shape == (1, 1, 2, 3000)


def test_pretrained_without_weights_is_a_one_line_error():
    with pytest.raises(zoo_core.ZooError, match="not cached; run `zoo pull tdc-17:top1`"):
        torch.hub.load(str(ROOT), "tdc_17", source="local", pretrained=True)  # offline, no mirror (conftest)


def test_every_registered_model_has_an_entry():
    spec = importlib.util.spec_from_file_location("svs_zoo_hubconf", ROOT / "hubconf.py")
    hubconf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hubconf)
    public = {name for name in dir(hubconf) if callable(getattr(hubconf, name)) and not name.startswith("_")}
    assert public == {name.replace("-", "_") for name in list_models()}
    assert "tfc-tdf-large" in hubconf.tfc_tdf_large.__doc__ and "paper" in hubconf.tfc_tdf_large.__doc__


def test_an_uninstalled_source_checkout_finds_its_own_plugins(monkeypatch):
    """torch.hub imports the repository from its folder without installing it: no entry points of svs-zoo."""
    monkeypatch.setattr("zoo_core.plugins._plugin_entry_points", lambda: iter(()))
    plugins = PluginSet()
    plugins.load_entry_points()
    assert plugins.statuses["unet"].distribution == "svs-zoo (source checkout)" and plugins.statuses["unet"].loaded
    assert "tdc-17" in list_models(catalogue=build_catalogue(plugins))


def test_the_documented_calls_run_as_written_on_this_checkout(weights_mirror: Path, monkeypatch):
    """Every torch.hub.load line of hubconf.py's docstring and of the documentation (docs/deployment.md, where
    torch.hub is documented) runs with this checkout as the path, and none names a made-up repository owner."""
    import re

    monkeypatch.setenv("ZOO_WEIGHTS_MIRROR", str(weights_mirror))
    spec = importlib.util.spec_from_file_location("svs_zoo_hubconf", ROOT / "hubconf.py")
    hubconf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hubconf)
    documents = {"hubconf.py": hubconf.__doc__}
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        documents[str(page.relative_to(ROOT))] = page.read_text(encoding="utf-8")
    pattern = re.compile(r'torch\.hub\.load\("path/to/svs-zoo", (.*)\)\s*(?:#.*)?$', re.MULTILINE)
    for name in ("hubconf.py", "docs/deployment.md"):  # where the three documented forms are written
        assert len(pattern.findall(documents[name])) >= 3, name
    for name, text in documents.items():
        assert "<owner>" not in text, name
        for arguments in pattern.findall(text):
            model = eval(f"torch.hub.load(root, {arguments})", {"torch": torch, "root": str(ROOT)})  # noqa: S307
            assert isinstance(model, zoo_core.SeparationModel) and not model.training, (name, arguments)
            if "pretrained=False" not in arguments:
                assert model.provenance.variant == ("top2" if "top2" in arguments else "top1"), arguments
