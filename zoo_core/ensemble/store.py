"""Named ensembles (stub; filled in by `zoo ensemble fit`)."""

from __future__ import annotations

from typing import Optional

from .names import is_composite


def resolve_composite(name: str) -> Optional[str]:
    """``name`` when it names an ensemble or an augmented model, else None (a plain model)."""
    return name if is_composite(name) else None
