"""What a catalogue entry holds: `ModelEntry` (a named model) and `WeightVariant` (one set of its weights)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping, Optional

from ..chunking import DEFAULT_OVERLAP
from ..errors import UnknownModelError
from ..model import StftSettings

DEFAULT_SDR_SET = "MUSDB18 test"  # where the ISMIR 2020 figures were measured; an entry's paper_sdr_set says otherwise
# keys of the [architecture] table that belong to the framing, not to the architecture's builder
FRAMING_KEYS = ("name", "representation", "estimation")


@dataclass(frozen=True)
class WeightVariant:
    """One set of weights for a model: where it comes from and how it was trained to be used."""

    name: str
    url: str = ""
    file: str = ""  # file name of the original (what a mirror folder holds)
    git_sha1: str = ""
    sha256: str = ""
    bytes: Optional[int] = None
    format: str = ""  # how the original file is stored, e.g. "state_dict", "dataparallel", "lightning"
    layout: str = ""  # which code generation's tensor layout, e.g. "ismir2020", "lightning"
    license: str = ""
    origin: str = ""
    paper_sdr: Optional[float] = None
    notes: str = ""
    stft: Mapping[str, Any] = field(default_factory=dict)  # overrides of the model's STFT settings


@dataclass(frozen=True)
class ModelEntry:
    """A named model: its architecture and options, block, framing, stems, figures and weight variants."""

    name: str
    block: str = ""  # the intermediate block type, for architectures built from blocks
    description: str = ""
    stems: tuple[str, ...] = ("vocals",)  # what the network estimates, in its output order
    parameters: Optional[int] = None  # as recorded in the catalogue; tests check it against the built model
    paper_sdr: Optional[float] = None
    paper_sdr_set: str = DEFAULT_SDR_SET  # the test set paper_sdr was measured on
    paper: str = ""
    notes: str = ""
    overlap: float = DEFAULT_OVERLAP  # zoo separate's default overlap for this model (e.g. its reference's)
    architecture: Mapping[str, Any] = field(default_factory=dict)  # name, framing keys and the builder's options
    block_args: Mapping[str, Any] = field(default_factory=dict)
    stft: StftSettings = field(default_factory=StftSettings)
    variants: Mapping[str, WeightVariant] = field(default_factory=dict)
    default_variant: Optional[str] = None
    source: str = ""  # the plugin or registry file that defined it

    @property
    def architecture_name(self) -> str:
        return self.architecture["name"]  # required (zoo_core.registry.parsing)

    @property
    def architecture_options(self) -> dict[str, Any]:
        """The ``[architecture]`` values the architecture's builder receives."""
        return {key: value for key, value in self.architecture.items() if key not in FRAMING_KEYS}

    @property
    def representation(self) -> str:
        return self.architecture.get("representation", "cac")

    @property
    def estimation(self) -> str:
        return self.architecture.get("estimation", "mapping" if self.representation == "cac" else "masking")

    @property
    def target(self) -> str:
        """The first stem: what a single-target model separates (vocals for the paper's models)."""
        return self.stems[0]

    def variant(self, name: Optional[str] = None) -> Optional[WeightVariant]:
        """The named variant, the default one for None, or None when the model has no weights."""
        name = name or self.default_variant
        if name is None:
            return None
        try:
            return self.variants[name]
        except KeyError:
            known = ", ".join(self.variants) or "none"
            raise UnknownModelError(f"model {self.name!r} has no weights variant {name!r} (variants: {known})") from None

    def stft_for(self, variant: Optional[WeightVariant]) -> StftSettings:
        """STFT settings, with the variant's overrides (weights carry the framing they were trained with)."""
        if variant is None or not variant.stft:
            return self.stft
        return replace(self.stft, **dict(variant.stft))

    def as_json(self) -> dict[str, Any]:
        """The entry as plain JSON values; variants list only the fields they set."""
        data = json.loads(json.dumps(asdict(self), default=dict))
        data["variants"] = {
            name: {key: value for key, value in variant.items() if value not in ("", None, {})}
            for name, variant in data["variants"].items()
        }
        return data
