"""Loading what a composite name says (`zoo_core.ensemble.names`): the members through the one model loader,
wrapped for test-time augmentation, combined into an `Ensemble`."""

from __future__ import annotations

from typing import Callable

from .engine import Ensemble
from .names import Augmented, Spec, folder_name, format_spec, parse_spec
from .tta import with_tta


def load_composite(name: str, load_one: Callable[[str], object]):
    """The model ``name`` stands for (a composite name, or a named ensemble of `zoo_core.ensemble.store`);
    ``load_one(model_name)`` loads one plain model (on its device, ready)."""
    from .store import named_ensembles, resolve_composite

    named = named_ensembles().get(name) if resolve_composite(name) == name and "(" not in name else None
    if named is not None:
        members = [build(parse_spec(m), load_one) for m in named["members"]]
        return Ensemble(members, named.get("rule", "avg-wave"), named.get("weights"), label=name, folder=name)
    return build(parse_spec(name), load_one)


def build(spec: Spec, load_one: Callable[[str], object]):
    if isinstance(spec, str):
        return load_one(spec)
    if isinstance(spec, Augmented):
        model = with_tta(build(spec.member, load_one))
        model.zoo_label, model.zoo_folder = format_spec(spec), folder_name(spec)
        return model
    members = [build(m, load_one) for m in spec.members]
    return Ensemble(members, spec.rule, spec.weights, label=format_spec(spec), folder=folder_name(spec))
