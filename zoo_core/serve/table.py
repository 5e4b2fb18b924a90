"""The page's model table: what `zoo list` shows (name, stems, parameters, published SDR, weights here) plus this
machine's measured speed, and which model the page selects by default."""

from __future__ import annotations

import functools
from typing import Optional

DEFAULT_MODEL = "tdc-17"  # preferred when cached: the fast paper model (zoo_core.separate.DEFAULT_MODEL)


@functools.lru_cache(maxsize=None)
def _parameters(name: str) -> int:
    """Trainable parameters, counted on a model built on the meta device (no memory, no initialisation:
    mdx23c's 112M parameters count in a fraction of a second). They never change while the server runs."""
    import torch

    from ..registry import count_parameters, create_model, get_entry

    with torch.device("meta"):
        return count_parameters(create_model(get_entry(name)))


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
            "parameters": _parameters(name),
            "paper_sdr": entry.paper_sdr,
            "weights": weights_status(entry),
            "cached": entry.default_variant is not None and is_cached(entry),
            "cached_variants": cached_variants(entry),
            "default_variant": entry.default_variant,
            "downloadable": entry.default_variant in released,
            "speed": speeds.get(name),
        })
    return {"models": rows, "default": default_model(rows)}


def default_model(rows: list[dict]) -> Optional[str]:
    """A model whose weights are here: tdc-17 if it is, else the cached one with the best published SDR."""
    cached = [row for row in rows if row["cached"]]
    if any(row["name"] == DEFAULT_MODEL for row in cached):
        return DEFAULT_MODEL
    cached.sort(key=lambda row: -(row["paper_sdr"] or float("-inf")))
    return cached[0]["name"] if cached else None
