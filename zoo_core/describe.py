"""Human- and JSON-friendly descriptions of registry entries and built models (for `zoo list` / `zoo info`)."""

from __future__ import annotations

from typing import Optional

from torch import nn

from .framing import image_channels
from .registry import ModelCatalogue, ModelEntry, architecture_for, block_for, build_model, count_parameters, get_catalogue


def summary(entry: ModelEntry, catalogue: Optional[ModelCatalogue] = None, model: Optional[nn.Module] = None) -> dict:
    """One row of `zoo list`."""
    from .weights import weights_status

    cat = catalogue or get_catalogue()
    variant = entry.variant()
    stft = entry.stft_for(variant)
    model = model if model is not None else build_model(entry, catalogue=cat)
    block = block_for(entry, cat)
    architecture = architecture_for(entry, cat)
    return {
        "name": entry.name,
        "architecture": architecture.name,
        "block": entry.block,
        "parameters": count_parameters(model),
        "n_fft": stft.n_fft,
        "hop_length": stft.hop_length,
        "frames": stft.frames,
        "bins": stft.kept_bins,
        "center": stft.center,
        "sample_rate": stft.sample_rate,
        "representation": entry.representation,
        "stems": list(entry.stems),
        "weights": weights_status(entry),
        "variants": list(entry.variants),
        "default_variant": entry.default_variant,
        "paper_sdr": entry.paper_sdr,
        "paper_sdr_set": entry.paper_sdr_set if entry.paper_sdr is not None else None,
        "plugin": block.plugin if block is not None else architecture.plugin,
        "architecture_plugin": architecture.plugin,
        "source": entry.source,
    }


def architecture(entry: ModelEntry, catalogue: Optional[ModelCatalogue] = None, model: Optional[nn.Module] = None) -> dict:
    """The resolved network: what it sees, its options, and what its architecture reports about its parts."""
    cat = catalogue or get_catalogue()
    arch = architecture_for(entry, cat)
    block = block_for(entry, cat)
    stft = entry.stft_for(entry.variant())
    model = model if model is not None else build_model(entry, catalogue=cat)
    details = arch.describe(model.network) if arch.describe is not None else {}
    return {
        "name": arch.name,
        "plugin": arch.plugin,
        "options": {**arch.defaults, **entry.architecture_options},
        "input": [image_channels(entry.representation), stft.kept_bins, stft.frames],
        "output": [len(entry.stems), image_channels(entry.representation), stft.kept_bins, stft.frames],
        "time_factor": model.time_factor,
        "block": None if block is None else {"name": block.name, "plugin": block.plugin, "args": {**block.defaults, **entry.block_args}},
        "estimation": entry.estimation,
        "parameters": count_parameters(model),
        "parts": {name: count_parameters(child) for name, child in model.network.named_children()},
        "window_samples": stft.window_samples,
        **details,
    }
