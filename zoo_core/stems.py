"""Stem names: what a model's outputs are called, which of them separation writes, and what each means in MUSDB18.

A model estimates ``model.stems`` (one for a single-target vocal model, two or four for multi-stem ones). Any
model with a vocals stem can also give ``accompaniment`` = mixture − vocals, the karaoke track (`available_stems`).
A model that estimates vocals alone writes it by default, so every separation of a vocal model gives the pair a
karaoke user expects and that MUSDB evaluates (`output_stems`); the others write it when asked
(``--stems accompaniment``).
"""

from __future__ import annotations

from typing import Sequence

ACCOMPANIMENT = "accompaniment"
MUSDB_STREAMS = ("mixture", "drums", "bass", "other", "vocals")  # the stream order of a MUSDB18 .stem.mp4
MUSDB_SOURCES = MUSDB_STREAMS[1:]

# the MUSDB18 sources a stem name stands for (its reference is their sum)
MUSDB_MEANING: dict[str, tuple[str, ...]] = {
    "vocals": ("vocals",),
    "drums": ("drums",),
    "bass": ("bass",),
    "other": ("other",),
    ACCOMPANIMENT: ("drums", "bass", "other"),
    "instrumental": ("drums", "bass", "other"),
}


def can_complement(model_stems: Sequence[str]) -> bool:
    """Whether separation can form ``accompaniment`` = mixture − vocals: the model estimates vocals, and no
    accompaniment of its own."""
    return "vocals" in model_stems and ACCOMPANIMENT not in model_stems


def has_complement(model_stems: Sequence[str]) -> bool:
    """Whether separation adds ``accompaniment`` = mixture − the model's only stem by default (a vocal model)."""
    return list(model_stems) == ["vocals"]


def output_stems(model_stems: Sequence[str]) -> list[str]:
    """What separating with a model of ``model_stems`` yields by default, in order."""
    return [*model_stems, ACCOMPANIMENT] if has_complement(model_stems) else list(model_stems)


def available_stems(model_stems: Sequence[str]) -> list[str]:
    """Every stem separating with a model of ``model_stems`` can yield, in order: the default ones, and the
    accompaniment of any model with a vocals stem."""
    return [*model_stems, ACCOMPANIMENT] if can_complement(model_stems) else list(model_stems)
