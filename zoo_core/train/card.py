"""What a run leaves for the rest of svs-zoo: ``DIR/model.safetensors`` and the model card ``DIR/card.toml``.

``model.safetensors`` holds the network's state_dict under svs-zoo's ``model.network`` names, with string metadata
(model, variant, stft, steps, validation SDR, ...). ``card.toml`` is a registry file in the schema of
``registry.toml``: one ``[models.NAME]`` table with the base model's architecture and one variant for these
weights (file, hashes, STFT), so ``ZOO_REGISTRY=DIR/card.toml`` lists the model, ``zoo pull NAME`` fetches the weights from the card's
``file://`` URL and ``zoo import DIR/model.safetensors --model NAME --variant RUN`` caches them from anywhere
(`zoo_core.weights.convert` reads svs-zoo safetensors as they are). A ``[training]`` table,
which the registry ignores, records the configuration, the data and the validation history.
"""

from __future__ import annotations

import datetime
import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping

from .. import __version__
from ..files import write_text_atomically
from ..model import StftSettings
from ..registry import ModelEntry
from ..hashing import file_digests

WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "card.toml"
FORMAT = "safetensors"  # the variant's `format` in the card
LAYOUT = "svs-zoo"  # tensors already in svs-zoo's names and layout: no conversion needed


def _toml(value: Any) -> str:
    """One TOML value: strings, numbers, booleans, lists and (inline) tables."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_toml(v)}" for k, v in value.items() if v is not None) + " }"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def _key(name: str) -> str:
    bare = name.replace("-", "").replace("_", "").isalnum() and name.isascii()
    return name if bare else json.dumps(name)


def _table(header: str, values: Mapping[str, Any]) -> str:
    lines = [f"[{header}]"] + [f"{_key(key)} = {_toml(value)}" for key, value in values.items() if value is not None]
    return "\n".join(lines) + "\n"


def write_card(
    run: Path,
    base: ModelEntry,
    name: str,
    variant: str,
    stft: StftSettings,
    parameters: int,
    origin: str,
    notes: str,
    license: str,
    training: Mapping[str, Any],
) -> Path:
    """``run/card.toml`` describing ``run/model.safetensors`` (which must already be written)."""
    weights = run / WEIGHTS_FILE
    git_sha1, sha256 = file_digests(weights)
    model = {
        "block": base.block,
        "description": f"{base.name} trained with `zoo train` (run {variant})",
        "stems": list(base.stems),
        "parameters": parameters,
        "notes": f"Architecture of {base.name}; weights from svs-zoo training (see the training table of its card).",
        "default_variant": variant,
        "architecture": dict(base.architecture),
        "block_args": dict(base.block_args),
        "stft": asdict(stft),
    }
    weights_variant = {
        "url": weights.resolve().as_uri(),
        "file": WEIGHTS_FILE,
        "git_sha1": git_sha1,
        "sha256": sha256,
        "bytes": weights.stat().st_size,
        "format": FORMAT,
        "layout": LAYOUT,
        "license": license or None,
        "origin": origin,
        "notes": notes,
        "stft": asdict(stft),
    }
    written = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    text = "\n".join(
        [
            f"# Model card of a `zoo train` run (svs-zoo {__version__}, {written}); a registry file:",
            f"#   ZOO_REGISTRY={run.resolve() / CARD_FILE} zoo info {name}",
            f"#   zoo import {weights.resolve()} --model {name} --variant {variant}",
            "",
            _table(f"models.{_key(name)}", model),
            _table(f"models.{_key(name)}.variants.{_key(variant)}", weights_variant),
            "# Not read by the registry: how these weights were made.",
            _table("training", training),
        ]
    )
    path = run / CARD_FILE
    write_text_atomically(path, text)
    return path
