"""The page's model table: what `zoo list` shows (name, stems, parameters, published SDR, weights here) plus this
machine's measured speed, and which model the page selects by default."""

from __future__ import annotations

import functools
import threading
from typing import Optional

from ..builtin import default_model

_counting = threading.Lock()  # one thread counts, others wait for its cached figures


def parameters(name: str) -> int:
    """Trainable parameters, counted on a model built on the meta device (no memory, no initialisation:
    mdx23c's 112M parameters count in a fraction of a second, after a one-off import of torch's reference
    operations). They never change while the server runs."""
    with _counting:
        return _count(name)


@functools.lru_cache(maxsize=None)
def _count(name: str) -> int:
    import torch

    from ..registry import build_model, count_parameters

    with torch.device("meta"):
        return count_parameters(build_model(name))


def model_table(speeds: dict[str, float]) -> dict:
    """``{"models": [row, ...], "default": name or None}``; ``speeds``: measured seconds of audio per second."""
    from ..registry import get_catalogue, get_entry, list_models
    from ..stems import output_stems
    from ..weights import weights_status
    from ..weights.cache import cached_variants, is_cached

    catalogue = get_catalogue()
    rows = []
    for name in list_models([], catalogue):
        entry = get_entry(name, catalogue)
        released = [v for v, variant in entry.variants.items() if variant.url or variant.file]
        rows.append({
            "name": name,
            "description": entry.description,
            "stems": output_stems(entry.stems),
            "parameters": parameters(name),
            "paper_sdr": entry.paper_sdr,
            "weights": weights_status(entry),
            "cached": entry.default_variant is not None and is_cached(entry),
            "cached_variants": cached_variants(entry),
            "default_variant": entry.default_variant,
            "downloadable": entry.default_variant in released,
            "speed": speeds.get(name),
        })
    return {"models": rows, "default": preselected(rows)}


def preselected(rows: list[dict]) -> Optional[str]:
    """A model whose weights are here: the default model (registry.toml's ``default_model``) if it is, else the
    cached one with the best published SDR; with none here, the default model (its weights are one click away)."""
    cached = [row for row in rows if row["cached"]]
    if not cached or any(row["name"] == default_model() for row in cached):
        return default_model()
    return max(cached, key=lambda row: row["paper_sdr"] or float("-inf"))["name"]
