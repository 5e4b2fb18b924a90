"""Stem names: what a model's outputs are called, which of them separation writes, and what each means in MUSDB18.

A model estimates ``model.stems`` (one stem for the paper's vocal models; two or four for TFC-TDF-UNet v3). A
model that estimates vocals alone also yields ``accompaniment`` = mixture − vocals, so every separation of a
vocal model gives the pair a karaoke user expects and that MUSDB evaluates.
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


def has_complement(model_stems: Sequence[str]) -> bool:
    """Whether separation adds ``accompaniment`` = mixture − the model's only stem (a vocal model)."""
    return list(model_stems) == ["vocals"]


def output_stems(model_stems: Sequence[str]) -> list[str]:
    """What separating with a model of ``model_stems`` yields, in order."""
    return [*model_stems, ACCOMPANIMENT] if has_complement(model_stems) else list(model_stems)
