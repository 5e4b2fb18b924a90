"""`load_model`: a registry model with its weights, in one call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import torch

from ..errors import UnknownModelError, ZooError
from ..model import SeparationModel, StftSettings
from ..registry import architecture_for, create_model, get_entry
from .cache import cached_path, cached_variants, is_cached
from .convert import checkpoint_file, read_checkpoint
from .framing import weights_framing
from ..hashing import file_digests
from .fetch import MIRROR_HINT, can_fetch
from .install import pull
from .models import check_fits, resolve_variant
from .store import read_weights


def load_model(name: str, variant: str | None = None, device: str | torch.device = "cpu") -> SeparationModel:
    """The model ``name`` (``"tdc-17"`` or ``"tdc-17:top2"``) with its weights, in eval mode on ``device``.

    Without a variant: the default released one, or for a model without released weights its only cached one
    (imported or trained). Weights missing from the cache are pulled first when a mirror is configured or
    downloads are allowed.
    The variant's STFT settings are used. ``model.weights_info`` tells which weights were loaded: model,
    variant, sha256 (of the cached safetensors file), source_url, source_git_sha1, format, layout.
    """
    entry, chosen = resolve_variant(name, variant, cached=True)
    label = f"{entry.name}:{chosen}"
    released = entry.variants.get(chosen)
    if released is None and not is_cached(entry, chosen):
        known = ", ".join(entry.variants) or "none"
        cached = ", ".join(cached_variants(entry)) or "none"
        raise UnknownModelError(
            f"model {entry.name!r} has no weights variant {chosen!r} (released: {known}; cached: {cached}); "
            f"`zoo import PATH --model {entry.name} --variant {chosen}` adds one"
        )
    if released is not None and not is_cached(entry, chosen):
        if not can_fetch(released):
            raise ZooError(f"weights for {label} are not cached; run `zoo pull {label}`, or {MIRROR_HINT}", exit_code=1)
        pull(label)
    remedy = (
        f"run `zoo pull {label}` again"
        if released is not None
        else f"import it again with `zoo import PATH --model {entry.name} --variant {chosen}`"
    )
    path = cached_path(entry, chosen)
    tensors, metadata, digest = read_weights(path, remedy)
    stft = entry.stft_for(released) if released is not None else _recorded_stft(metadata, path, remedy)
    model = create_model(entry, stft=stft)
    check_fits(model.unet, tensors, label, exit_code=1)
    model.unet.load_state_dict(tensors, strict=True)
    model = _to_device(model.eval(), device)
    model.weights_info = {
        "model": entry.name,
        "variant": chosen,
        "sha256": digest,
        "source_url": metadata.get("source_url", ""),
        "source_git_sha1": metadata.get("source_git_sha1", ""),
        "format": metadata.get("format", ""),
        "layout": metadata.get("layout", ""),
    }
    return model


def load_weights_file(
    name: str, path: str | Path, stft: Optional[str] = None, device: str | torch.device = "cpu"
) -> SeparationModel:
    """The model ``name`` with the weights of a checkpoint file, without putting them into the cache (``zoo
    export --weights``). The file is read and its STFT settings found as `import_checkpoint` does."""
    source = checkpoint_file(path)
    entry = get_entry(name)
    git_sha1, sha256 = file_digests(source)
    converted = read_checkpoint(source, architecture_for(entry).convert)
    settings, _ = weights_framing(entry, converted, str(source), None, stft)
    model = create_model(entry, stft=settings)
    check_fits(model.unet, converted.tensors, f"{entry.name} ({source.name})", exit_code=2)
    model.unet.load_state_dict(converted.tensors, strict=True)
    model = _to_device(model.eval(), device)
    model.weights_info = {
        "model": entry.name,
        "variant": f"file:{source.name}",
        "sha256": sha256,
        "source_url": source.resolve().as_uri(),
        "source_git_sha1": git_sha1,
        "format": converted.format,
        "layout": converted.layout,
    }
    return model


def _recorded_stft(metadata: dict[str, str], path: Path, remedy: str) -> StftSettings:
    try:
        return StftSettings(**json.loads(metadata["stft"]))
    except (KeyError, TypeError, ValueError):
        raise ZooError(f"{path} does not record its STFT settings; {remedy}", exit_code=1) from None


def _to_device(model: SeparationModel, device: str | torch.device) -> SeparationModel:
    try:
        return model.to(torch.device(device))
    except (RuntimeError, AssertionError, TypeError) as exc:  # unknown device string, or no such accelerator
        raise ZooError(f"cannot use device {device!r}: {exc}") from None
