"""Building a catalogue entry into a `SeparationModel` with freshly initialised parameters."""

from __future__ import annotations

from typing import Optional

from torch import nn

from ..architectures import NetworkContext
from ..errors import ConfigError
from ..framing import image_channels
from ..model import SeparationModel, StftSettings
from ..provenance import WeightsProvenance
from .catalogue import ModelCatalogue, get_catalogue
from .queries import architecture_for, resolve, split_name
from .schema import ModelEntry


def build_model(
    name: str | ModelEntry,
    variant: Optional[str] = None,
    *,
    stft: Optional[StftSettings] = None,
    provenance: Optional[WeightsProvenance] = None,
    catalogue: Optional[ModelCatalogue] = None,
) -> SeparationModel:
    """The model ``name`` with freshly initialised parameters (`zoo_core.load` then loads weights into it).

    ``name`` may carry a released variant (``name:variant``), whose STFT settings are used; ``stft`` replaces
    them (the settings recorded with imported or trained weights); ``provenance`` names the weights to come.
    """
    cat = catalogue or get_catalogue()
    if isinstance(name, ModelEntry):
        entry, chosen = name, name.variant(variant)
    else:
        entry, chosen = resolve(name if variant is None else f"{split_name(name)[0]}:{variant}", cat)
    settings = stft or entry.stft_for(chosen)
    settings.validate()
    architecture = architecture_for(entry, cat)
    block_type = cat.blocks.get(entry.block)
    if architecture.uses_blocks and block_type is None:
        raise ConfigError(f"model {entry.name!r}: {cat.missing_parts(entry)}")
    context = NetworkContext(
        in_channels=image_channels(entry.representation),
        bins=settings.kept_bins,
        frames=settings.frames,
        stems=len(entry.stems),
        block_type=block_type,
        block_args=dict(entry.block_args),
    )
    network = architecture.create(context, entry.architecture_options)
    return SeparationModel(network, settings, entry.stems, entry.representation, entry.estimation,
                           entry_name=entry.name, architecture=architecture, default_overlap=entry.overlap,
                           provenance=provenance)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (BatchNorm running statistics excluded), as the paper counts them."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
