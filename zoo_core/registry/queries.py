"""Small queries over the catalogue, timm-style: `list_models`, `get_entry`, `resolve`, and what builds an entry.

Names may carry a weights variant: ``NAME:VARIANT``.
"""

from __future__ import annotations

import difflib
import fnmatch
from typing import Iterable, Optional

from ..architectures import Architecture
from ..blocks import BlockType
from ..errors import UnknownModelError
from .catalogue import ModelCatalogue, get_catalogue
from .schema import ModelEntry, WeightVariant


def split_name(name: str) -> tuple[str, Optional[str]]:
    """``"NAME:VARIANT"`` → ``("NAME", "VARIANT")``; ``"NAME"`` → ``("NAME", None)``."""
    model, _, variant = name.partition(":")
    return model, variant or None


def list_models(filter: str | Iterable[str] = "", catalogue: Optional[ModelCatalogue] = None) -> list[str]:
    """Model names matching fnmatch pattern(s), sorted; all of them for an empty filter."""
    cat = catalogue or get_catalogue()
    cat.check()
    patterns = [filter] if isinstance(filter, str) else list(filter)
    names = sorted(cat.models)
    if not any(patterns):
        return names
    return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns if p)]


def get_entry(name: str, catalogue: Optional[ModelCatalogue] = None) -> ModelEntry:
    cat = catalogue or get_catalogue()
    cat.check()
    model, _ = split_name(name)
    if model in cat.models:
        return cat.models[model]
    if model in cat.hidden:
        raise UnknownModelError(f"model {model!r} is unavailable: {cat.hidden[model]}")
    raise UnknownModelError(f"unknown model {model!r}{_suggestion(model, list(cat.models))}")


def _suggestion(name: str, known: list[str]) -> str:
    """``; did you mean ...?`` with the closest names, compared without case: a name that differs only in case
    (``NAME-1`` for ``name-1``) scores highest and comes first."""
    by_lower = {k.lower(): k for k in known}
    close = [by_lower[c] for c in difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.4)]
    return f"; did you mean {', '.join(close)}?" if close else "; run `zoo list` to see every model"


def resolve(name: str, catalogue: Optional[ModelCatalogue] = None) -> tuple[ModelEntry, Optional[WeightVariant]]:
    """Entry and released weights variant (the default one when the name has none) for ``name[:variant]``."""
    entry = get_entry(name, catalogue)
    return entry, entry.variant(split_name(name)[1])


def block_for(entry: ModelEntry, catalogue: Optional[ModelCatalogue] = None) -> Optional[BlockType]:
    """The entry's intermediate block type (None for an architecture without blocks)."""
    cat = catalogue or get_catalogue()
    return cat.blocks.get(entry.block)


def architecture_for(entry: ModelEntry, catalogue: Optional[ModelCatalogue] = None) -> Architecture:
    cat = catalogue or get_catalogue()
    architecture = cat.architectures.get(entry.architecture_name)
    if architecture is None:
        raise UnknownModelError(f"model {entry.name!r} is unavailable: {cat.missing_parts(entry)}")
    return architecture
