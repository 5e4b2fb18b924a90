"""`pip install .` (not editable) gives a working `zoo list`: registry.toml and the plugins are in the wheel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_contains_everything_and_lists_every_model(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(dist),
         str(ROOT)],
        check=True, capture_output=True,
    )
    (wheel,) = dist.glob("svs_zoo-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "zoo_core/registry.toml" in names
    family_modules = ["zoo_unet/__init__.py", "zoo_tfc_tdf_v3/__init__.py", "zoo_roformer/__init__.py"] + [
        f"zoo_unet/{module}.py" for module in ("tdf", "tdc", "tfc", "tfc_tdf", "tdc_rnn", "tfc_rnn", "convert", "optimize")]
    for module in family_modules:
        assert module in names
    for page in ("index.html", "app.js", "style.css"):  # zoo serve's page is served from the package
        assert f"zoo_core/serve/static/{page}" in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "[svs_zoo.plugins]" in zipfile.ZipFile(wheel).read(entry_points).decode()

    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
        check=True, capture_output=True,
    )
    # run from an unrelated folder so nothing can come from the source checkout
    code = "import zoo_core; print(zoo_core.__file__)"
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert where.stdout.strip().startswith(str(site))
    listed = subprocess.run(
        [sys.executable, "-c", "from zoo_core.cli import main; main()", "list", "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert len(rows) >= 9
    assert {r["plugin"] for r in rows} == {"unet", "tfc-tdf-v3", "roformer"}  # one plugin per built-in family
