"""Which export formats a model can be written to: every one, except those its architecture or block declares
it cannot (``unsupported`` of `zoo_core.architectures.Architecture` and `zoo_core.blocks.BlockType`, with the
reason). `zoo export` refuses a declared one in one line before any work; tests/test_every_model.py exports every
registered model to every other format."""

from __future__ import annotations

from typing import Optional

from ..errors import ZooError
from ..registry import ModelCatalogue, ModelEntry, architecture_for, block_for


def unsupported_reason(entry: ModelEntry, fmt: str, catalogue: Optional[ModelCatalogue] = None) -> Optional[str]:
    """Why ``entry``'s network cannot be exported to ``fmt``, as its architecture or block declares; None if it can."""
    for part in (architecture_for(entry, catalogue), block_for(entry, catalogue)):
        if part is not None and fmt in part.unsupported:
            return part.unsupported[fmt]
    return None


def check_supported(entry: ModelEntry, fmt: str, catalogue: Optional[ModelCatalogue] = None) -> None:
    """Raise the one-line refusal when ``entry`` declares it cannot be exported to ``fmt``."""
    reason = unsupported_reason(entry, fmt, catalogue)
    if reason is not None:
        raise ZooError(f"{entry.name} cannot be exported with --format {fmt}: {reason}", exit_code=1)
