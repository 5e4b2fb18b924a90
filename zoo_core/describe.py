"""Human- and JSON-friendly descriptions of registry entries and built models (for `zoo list` / `zoo info`)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Optional

from torch import nn

from .registry import Catalogue, ModelEntry, block_for, count_parameters, create_model, get_catalogue


def _weights_status(entry: ModelEntry) -> str:
    try:
        from .weights import weights_status
    except ImportError:  # weights support not installed in this build
        return "downloadable" if entry.variants else "none"
    return weights_status(entry)


def summary(entry: ModelEntry, catalogue: Optional[Catalogue] = None, model: Optional[nn.Module] = None) -> dict:
    """One row of `zoo list`."""
    cat = catalogue or get_catalogue()
    variant = entry.variant()
    stft = entry.stft_for(variant)
    model = model if model is not None else create_model(entry, catalogue=cat)
    return {
        "name": entry.name,
        "block": entry.block,
        "parameters": count_parameters(model),
        "n_fft": stft.n_fft,
        "hop_length": stft.hop_length,
        "frames": stft.frames,
        "center": stft.center,
        "sample_rate": stft.sample_rate,
        "representation": entry.representation,
        "target": entry.target,
        "weights": _weights_status(entry),
        "variants": list(entry.variants),
        "default_variant": entry.default_variant,
        "paper_sdr": entry.paper_sdr,
        "plugin": block_for(entry, cat).plugin,
        "source": entry.source,
    }


def _params(module: nn.Module) -> int:
    return count_parameters(module)


def architecture(entry: ModelEntry, catalogue: Optional[Catalogue] = None) -> dict:
    """The resolved U-Net: shapes at every level and the parameters of each part."""
    cat = catalogue or get_catalogue()
    block = block_for(entry, cat)
    stft = entry.stft_for(entry.variant())
    config = entry.unet_config(block, stft)
    model = create_model(entry, catalogue=cat)
    unet = model.unet
    shapes = config.level_shapes()
    scaled = config.time_scaled_levels()

    def scale(level: int) -> list[int]:
        if config.sampling == "frequency":
            return [1, 2]
        return [2, 2] if level in scaled else [1, 2]

    levels = []
    for level in range(config.levels):
        frames, bins = shapes[level]
        levels.append(
            {
                "level": level,
                "frames": frames,
                "bins": bins,
                "sampling_scale": scale(level),
                "encoder_parameters": _params(unet.encoders[level]),
                "decoder_parameters": _params(unet.decoders[config.levels - 1 - level]),
                "sampling_parameters": _params(unet.downsampling[level])
                + _params(unet.upsampling[config.levels - 1 - level]),
            }
        )
    frames, bins = shapes[-1]
    return {
        "input": [config.in_channels, stft.n_fft // 2 + 1, stft.frames],
        "first_conv": {"out": [config.channels, bins * 2 ** config.levels], "parameters": _params(unet.first_conv)},
        "levels": levels,
        "middle": {"frames": frames, "bins": bins, "parameters": _params(unet.mid_block)},
        "final_conv": {"parameters": _params(unet.final_conv)},
        "channels": config.channels,
        "sampling": config.sampling,
        "time_down_levels": list(scaled),
        "block": {"name": block.name, "plugin": block.plugin, "args": {**block.defaults, **config.block_args}},
        "output_activation": config.output_activation,
        "estimation": entry.estimation,
        "parameters": count_parameters(model),
        "window_samples": stft.window_samples,
    }


def entry_as_dict(entry: ModelEntry) -> dict[str, Any]:
    data = asdict(entry)
    data["variants"] = {name: {k: v for k, v in asdict(var).items() if v not in ("", None, {})}
                        for name, var in entry.variants.items()}
    return data
