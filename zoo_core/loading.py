"""`load`: the one way to get a model, for the command line, torch.hub, export, training, streaming and tests.

    zoo_core.load("NAME")                      # a registry model with its default released weights
    zoo_core.load("NAME:VARIANT")              # a named variant (pulled into the cache when needed)
    zoo_core.load("NAME", init=True)           # initialised parameters, no weights
    zoo_core.load("ckpt.pt", model="NAME")     # the weights of a checkpoint file (not cached)
    zoo_core.load("model.onnx")                # an exported file (TorchScript, AOTInductor, ONNX)
    zoo_core.load("NAME", precision="fp32")    # prepared for inference (`zoo_core.inference.optimize`)

A registry model's ``provenance`` says which weights it holds. Loading an exported file imports no model code,
registry or plugin: only the file's metadata drives it (`zoo_core.hosts`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from .errors import UnknownModelError, ZooError

if TYPE_CHECKING:
    import torch

    from .model import SeparationModel
    from .registry import ModelEntry

PRECISIONS = {"fp32": "float32", "bf16": "bfloat16"}
# what an exported file's name ends with; anything else that exists is read as a checkpoint
_EXPORTED_SUFFIXES = (".onnx", ".pt2", ".ts")


def load(
    source: "str | Path | ModelEntry",
    *,
    model: Optional[str] = None,
    variant: Optional[str] = None,
    stft: Optional[str] = None,
    init: bool = False,
    device: str = "cpu",
    precision: Optional[str] = None,
):
    """A model from ``source``: a registry name (``NAME[:VARIANT]``), a checkpoint file (with ``model``, the
    entry it is for; ``stft`` as `zoo import` takes it) or an exported file; with ``init``, a registry name or a
    `ModelEntry` (a configuration of one's own) with initialised parameters. ``device``: ``cpu``, ``cuda[:N]``
    or ``auto``. ``precision`` (``fp32`` or ``bf16``) returns `zoo_core.inference.optimize`'s inference copy;
    None the model as built, in eval mode. An exported file is what it is: neither applies to it."""
    from .devices import resolve_device

    path = Path(source).expanduser() if isinstance(source, (str, Path)) else None
    if path is None and not init:
        raise ZooError(f"load() takes a name or a path, or a ModelEntry with init=True; got {type(source).__name__}")
    if path is not None and model is None and (path.suffix.lower() in _EXPORTED_SUFFIXES or _is_exported(path)):
        from .hosts import open_artifact

        return open_artifact(path, device)
    if isinstance(source, str) and model is None and not init:
        from .ensemble.store import resolve_composite

        composite = resolve_composite(source)
        if composite is not None:  # an ensemble, or a model with test-time augmentation (zoo_core.ensemble)
            from .ensemble.load import load_composite

            return load_composite(composite, lambda name: load(name, device=device, precision=precision))
    if precision is not None and precision not in PRECISIONS:
        raise ZooError(f"unknown precision {precision!r} (choose {', '.join(PRECISIONS)})")
    target = resolve_device(device)  # before the weights: a missing GPU is the cheaper error
    if model is not None:
        loaded = _from_file(model, path, stft)
    elif init:
        from .registry import build_model

        loaded = build_model(source if path is None else str(source), variant)
    else:
        loaded = _from_cache(str(source), variant)
    loaded = _to_device(loaded.eval(), target)
    if precision is None:
        return loaded
    import torch

    from .inference import optimize

    return optimize(loaded, getattr(torch, PRECISIONS[precision]))


def _is_exported(path: Path) -> bool:
    """A file whose contents say it is an exported model (a TorchScript or AOTInductor zip archive)."""
    if not path.is_file():
        return False
    from .export.inspect import artifact_format

    try:
        artifact_format(path)
    except ZooError:
        return False
    return True


def _from_cache(name: str, variant: Optional[str]) -> "SeparationModel":
    """The registry model ``name`` with cached weights: without a variant the default released one, or for a
    model without released weights its only cached one (imported or trained). Released weights missing from the
    cache are pulled first when a mirror is configured or downloads are allowed; the variant's STFT settings
    are used."""
    from .model import StftSettings
    from .provenance import WeightsProvenance
    from .registry import build_model
    from .weights.cache import cached_path, cached_variants, is_cached
    from .weights.fetch import MIRROR_HINT, can_fetch
    from .weights.install import pull
    from .weights.models import check_fits, resolve_variant
    from .weights.store import read_weights

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
    if released is not None:
        settings = entry.stft_for(released)
    else:
        try:
            settings = StftSettings(**json.loads(metadata["stft"]))
        except (KeyError, TypeError, ValueError):
            raise ZooError(f"{path} does not record its STFT settings; {remedy}", exit_code=1) from None
    provenance = WeightsProvenance(
        entry.name, chosen, digest, metadata.get("source_url", ""), metadata.get("source_git_sha1", ""),
        metadata.get("format", ""), metadata.get("layout", ""),
    )
    built = build_model(entry, stft=settings, provenance=provenance)
    check_fits(built.network, tensors, label, exit_code=1)
    built.network.load_state_dict(tensors, strict=True)
    return built


def _from_file(name: str, path: Path, stft: Optional[str]) -> "SeparationModel":
    """The model ``name`` with the weights of a checkpoint file, not put into the cache (``zoo export
    --weights``); the file is read and its STFT settings found as `zoo import` does."""
    from .hashing import file_digests
    from .provenance import WeightsProvenance
    from .registry import architecture_for, build_model, get_entry
    from .weights.convert import checkpoint_file, read_checkpoint
    from .weights.models import check_fits
    from .weights.stft_provenance import stft_provenance

    source = checkpoint_file(path)
    entry = get_entry(name)
    git_sha1, sha256 = file_digests(source)
    converted = read_checkpoint(source, architecture_for(entry).convert)
    settings, _ = stft_provenance(entry, converted, str(source), None, stft)
    provenance = WeightsProvenance(entry.name, f"file:{source.name}", sha256, source.resolve().as_uri(), git_sha1,
                                   converted.format, converted.layout)
    built = build_model(entry, stft=settings, provenance=provenance)
    check_fits(built.network, converted.tensors, f"{entry.name} ({source.name})", exit_code=2)
    built.network.load_state_dict(converted.tensors, strict=True)
    return built


def _to_device(model: "SeparationModel", device: "torch.device") -> "SeparationModel":
    try:
        return model.to(device)
    except (RuntimeError, AssertionError, TypeError) as exc:  # no such accelerator
        raise ZooError(f"cannot use device {device}: {exc}") from None
