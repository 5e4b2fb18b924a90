"""svs-zoo's own registry file: where it is, and the default model it names. A leaf module (no torch), so the
command line can show its defaults without loading models."""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path


def builtin_registry_path() -> Path:
    """registry.toml inside the installed package, else at the root of a source checkout."""
    packaged = Path(__file__).resolve().parent / "registry.toml"
    if packaged.exists():
        return packaged
    return Path(__file__).resolve().parents[1] / "registry.toml"


@functools.lru_cache(maxsize=1)
def default_model() -> str:
    """The model commands run when none is named (``default_model`` in registry.toml)."""
    with open(builtin_registry_path(), "rb") as handle:
        return str(tomllib.load(handle)["default_model"])
