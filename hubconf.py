"""torch.hub entry points: one per registered model, named with underscores (``tdc_17``, ``tfc_tdf_large``, ...).

    model = torch.hub.load("path/to/svs-zoo", "tdc_17", source="local", pretrained=True)  # the authors' weights
    model = torch.hub.load("path/to/svs-zoo", "tdc_17", source="local", variant="top2")   # another released variant
    model = torch.hub.load("path/to/svs-zoo", "tfc_tdf_small", source="local", pretrained=False)  # initialised

``"path/to/svs-zoo"`` is a clone of this repository (the tested form). torch.hub's default ``source="github"``
takes the repository's ``"OWNER/NAME"`` (or ``"OWNER/NAME:BRANCH"``) instead of a path: those of the GitHub
repository you got svs-zoo from, which this file cannot know.

Each returns a `zoo_core.SeparationModel` in eval mode: ``model(mixture [B, 2, N]) -> [B, stems, 2, N]`` at
``model.sample_rate``; `zoo_core.separation.separate(model, waveform, rate)` separates tracks of any length.
``pretrained=True`` goes through svs-zoo's verified weights cache (`zoo_core.load`: pulled once, checked
byte for byte, ``ZOO_WEIGHTS_MIRROR`` and ``ZOO_OFFLINE`` apply). The entries follow the registry, so models of
installed plugins appear too. svs-zoo need not be installed: its own plugins are found in this folder.
"""

from __future__ import annotations

import typing as _typing  # private names only: torch.hub.list() shows every public callable here

# import names torch.hub checks before importing this file (what loading a model needs)
dependencies = ["torch", "numpy", "pluggy", "safetensors", "platformdirs", "rich"]


def _entry(name: str) -> _typing.Callable[..., _typing.Any]:
    def load(pretrained: bool = True, variant: _typing.Optional[str] = None, device: str = "cpu"):
        import zoo_core

        if not pretrained and variant is not None:
            raise zoo_core.ZooError("variant names pretrained weights; it needs pretrained=True")
        return zoo_core.load(name, variant=variant, init=not pretrained, device=device)

    load.__name__ = load.__qualname__ = name.replace("-", "_")
    load.__doc__ = (
        f"{name}: {_describe(name)}\n\n"
        "pretrained: load released (or cached) weights through the verified cache; False: initialised parameters.\n"
        "variant: a weights variant (default: the model's default); device: where the model goes."
    )
    return load


def _describe(name: str) -> str:
    import zoo_core

    entry = zoo_core.get_entry(name)
    variants = ", ".join(entry.variants) or "none released"
    return f"{entry.description or entry.name} (weights: {variants})"


def _register_entries() -> None:
    import zoo_core

    for name in zoo_core.list_models():
        globals()[name.replace("-", "_")] = _entry(name)


_register_entries()
