"""svs-zoo core: block and architecture interfaces, spectrogram framing, registry, plugins and CLI.

Quick start::

    import zoo_core
    zoo_core.list_models()
    model = zoo_core.load("NAME:VARIANT")               # with its weights (pulled when needed)
    model = zoo_core.load("NAME", init=True)            # initialised parameters

The names below are imported on first use, not with the package: running an exported file
(`zoo_core.hosts`) must not load the model code, the registry or the plugins.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"  # the one place the version is written (pyproject.toml reads it)

# public name -> the module that defines it
_EXPORTS = {
    "Architecture": "architectures",
    "Conversion": "architectures",
    "NetworkContext": "architectures",
    "BlockContext": "blocks",
    "BlockType": "blocks",
    "ConfigError": "errors",
    "ZooError": "errors",
    "hookimpl": "hookspecs",
    "SeparationModel": "model",
    "StftSettings": "model",
    "count_parameters": "registry",
    "entries_from_toml": "registry",
    "builtin_entries": "registry",
    "get_entry": "registry",
    "list_models": "registry",
    "resolve": "registry",
    "load": "loading",
    "WeightsProvenance": "provenance",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    try:  # `zoo_core.chunking` and friends after a bare `import zoo_core`, as before
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
