"""Which model a weights variant builds, and whether a set of tensors fits it exactly."""

from __future__ import annotations

import json
from typing import Mapping, Optional

from torch import Tensor, nn

from ..errors import ZooError
from ..model import StftSettings
from ..registry import ModelEntry, get_entry, split_name
from .cache import variant_name

_LISTED = 4  # tensor names quoted in a mismatch message


def resolve_variant(name: str, variant: Optional[str], cached: bool = False) -> tuple[ModelEntry, str]:
    """Entry and variant name for ``name`` (``model`` or ``model:variant``) and an optional ``variant``;
    ``cached``: a model without released weights takes its one cached variant (`variant_name`)."""
    entry = get_entry(name)
    in_name = split_name(name)[1]
    if variant and in_name and variant != in_name:
        raise ZooError(f"two variants given for {entry.name!r}: {in_name!r} in the name and {variant!r}")
    return entry, variant_name(entry, variant or in_name, cached)


def stft_json(stft: StftSettings) -> str:
    return json.dumps(stft.as_dict(), sort_keys=True)


def check_fits(network: nn.Module, tensors: Mapping[str, Tensor], label: str, exit_code: int = 2) -> None:
    """Raise a `ZooError` naming the tensors unless ``tensors`` is exactly ``network``'s state_dict in names and shapes.

    ``exit_code``: 2 when the tensors come from the user's file, 1 when from the cache.
    """
    expected = network.state_dict()
    missing = [key for key in expected if key not in tensors]
    unexpected = [key for key in tensors if key not in expected]
    wrong = [
        f"{key} {list(tensors[key].shape)} (model: {list(value.shape)})"
        for key, value in expected.items()
        if key in tensors and tensors[key].shape != value.shape
    ]
    problems = [
        f"{len(items)} {kind}: {', '.join(items[:_LISTED])}{', ...' if len(items) > _LISTED else ''}"
        for kind, items in (("missing", missing), ("unexpected", unexpected), ("with another shape", wrong))
        if items
    ]
    if problems:
        raise ZooError(f"the weights do not fit {label}: " + "; ".join(problems), exit_code=exit_code)
