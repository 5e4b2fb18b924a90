"""`WeightsProvenance`: which weights a model holds and where they came from (output folders, manifests, the
metadata of exported files). A leaf module: the artifact path reads it without loading model code."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class WeightsProvenance:
    model: str  # the registry entry
    variant: str = ""  # a released or cached variant, or "file:NAME" for weights read from a file
    sha256: str = ""  # of the cached safetensors file, or of the file read
    source_url: str = ""
    source_git_sha1: str = ""
    format: str = ""  # how the original was stored
    layout: str = ""  # whose tensor names it used

    @property
    def label(self) -> str:
        """``<model>:<variant>`` (``NAME:VARIANT``), as manifests record it."""
        return f"{self.model}:{self.variant}" if self.variant else self.model

    def as_dict(self) -> dict[str, str]:
        return asdict(self)
