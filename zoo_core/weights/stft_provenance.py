"""Which STFT settings a set of weights was trained with: a network's weights are only right with its framing.

Code generations of one network family may frame the same network differently (one released network of the
built-in paper family: hop 2048 without centring in its authors' first code, hop 1024 centred in their second),
so weights must never silently take the registry's defaults. In order:

1. a released variant (the file's hashes matched it, or the user named it with ``--stft VARIANT``): its settings;
2. settings the user gave (``--stft hop_length=1024,center=true``) over the model's registry defaults;
3. settings the checkpoint records itself (saved hyper-parameters a family's converter reads, svs-zoo's
   safetensors metadata); a ``state_dict()`` saved from svs-zoo's own Python model records none and has the
   model's default framing, the one ``zoo_core.load(name, init=True)`` built it with;
4. the settings of the model's released variants in the same layout, when they agree (a re-saved copy of
   ``epoch2007`` takes ``epoch2007``'s framing);
5. the model's only framing, when its registry defaults and every released variant share one (nothing to choose
   between), unless it contradicts what the file's layout implies (`Conversion.implied_stft`: code that always
   centred its STFT cannot have trained an uncentred framing);
6. otherwise a one-line error asking for ``--stft``: nothing is guessed.

Callers report which rule decided (the second value returned), so the choice is never silent.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Optional

from ..errors import ZooError
from ..model import StftSettings
from ..registry import ModelEntry
from .convert import Converted

_TYPES = {"n_fft": int, "hop_length": int, "frames": int, "sample_rate": int, "bins": int, "center": bool}


def parse_stft(text: str) -> dict[str, Any]:
    """``"hop_length=1024,center=true"`` → ``{"hop_length": 1024, "center": True}``."""
    values: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, raw = part.partition("=")
        key = key.strip()
        if not sep or key not in _TYPES:
            raise ZooError(f"--stft: expected a released variant or KEY=VALUE pairs with keys {', '.join(_TYPES)}; got {part!r}")
        raw = raw.strip().lower()
        if _TYPES[key] is bool:
            if raw not in ("true", "false", "1", "0"):
                raise ZooError(f"--stft: {key} must be true or false, got {raw!r}")
            values[key] = raw in ("true", "1")
        else:
            try:
                values[key] = int(raw)
            except ValueError:
                raise ZooError(f"--stft: {key} must be an integer, got {raw!r}") from None
    return values


def _settled(entry: ModelEntry, changes: dict[str, Any], where: str) -> StftSettings:
    try:
        stft = replace(entry.stft, **changes)
        stft.validate()
    except (TypeError, ZooError) as exc:
        raise ZooError(f"{where}: unusable STFT settings {changes}: {exc}") from None
    return stft


def stft_provenance(
    entry: ModelEntry, converted: Converted, source: str, released: Optional[str] = None, given: Optional[str] = None
) -> tuple[StftSettings, str]:
    """``(settings, how they were found)`` for ``converted`` weights of ``entry`` (see the module docstring)."""
    if given and given in entry.variants:
        released = given
        given = None
    if released is not None:
        return entry.stft_for(entry.variants[released]), f"the released variant {released}"
    if given:
        return _settled(entry, parse_stft(given), source), "--stft"
    if converted.stft:
        return _settled(entry, dict(converted.stft), source), "the checkpoint's own record"
    if converted.layout == "svs-zoo":  # a state_dict saved from svs-zoo's own Python model, which records nothing
        return entry.stft_for(entry.variant()), f"{entry.name}'s default framing, as the zoo builds it"
    same_layout = [v for v in entry.variants.values() if v.layout == converted.layout]
    framings = {entry.stft_for(v) for v in same_layout}
    if len(framings) == 1:
        names = ", ".join(v.name for v in same_layout)
        return framings.pop(), f"the {converted.layout} layout of released {entry.name}:{names}"
    known = {entry.stft} | {entry.stft_for(v) for v in entry.variants.values()}
    implied = dict(converted.implied_stft)
    contradicted = [key for key, value in implied.items() if getattr(entry.stft, key) != value]
    if len(known) == 1 and not contradicted:
        return entry.stft, f"{entry.name}'s only framing"
    why = (f"{len(known)} framings among its defaults and released variants" if len(known) > 1
           else f"its only framing contradicts what the {converted.layout} layout implies "
                f"({', '.join(f'{key}={implied[key]}' for key in contradicted)})")
    raise ZooError(
        f"cannot tell which STFT settings {source} was trained with: it records none, {entry.name} has "
        f"{'no' if not framings else 'disagreeing'} released variants in its {converted.layout} layout and {why}; "
        f"say it with --stft VARIANT or --stft hop_length=N,center=true|false (registry defaults: "
        f"{entry.stft.as_dict()})"
    )
