"""How an ensemble or an augmented model is named in one string: what ``-m`` builds, what the manifest and the
workers of ``--jobs`` carry, and what the output folder is made from.

    A:one                                       one model
    tta(A:one)                                  with test-time augmentation
    avg-wave(A:one, A:two*0.5)                  an ensemble: the rule, the members, their weights
    avg-wave(tta(A:one), tta(A:two))            an ensemble of augmented members

A weight follows its member after ``*`` (default 1). A name of a fitted ensemble (`zoo_core.ensemble.store`)
stands for its whole definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

from ..errors import ZooError
from .rules import RULES, WEIGHTED, check_rule

TTA = "tta"


@dataclass(frozen=True)
class Augmented:
    member: "Spec"


@dataclass(frozen=True)
class Combined:
    rule: str
    members: tuple["Spec", ...]
    weights: Optional[tuple[float, ...]] = None  # None: equal


Spec = Union[str, Augmented, Combined]


def is_composite(name: str) -> bool:
    return name.rstrip().endswith(")")


def compose(models: Sequence[str], rule: Optional[str], weights: Optional[Sequence[float]], tta: bool) -> str:
    """The name ``-m A -m B --ensemble RULE --weights ... --tta`` stands for; errors for what does not fit."""
    models = [m.strip() for m in models]
    if rule is None:
        if len(models) > 1:
            raise ZooError(f"{len(models)} models given (-m); combine them with --ensemble {'|'.join(RULES)}")
        if weights is not None:
            raise ZooError("--weights applies to an ensemble (--ensemble RULE with several -m)")
        return format_spec(Augmented(models[0])) if tta else models[0]
    check_rule(rule)
    if len(models) < 2:
        raise ZooError("an ensemble needs at least two models: -m A -m B --ensemble RULE")
    if weights is not None:
        if rule not in WEIGHTED:
            raise ZooError(f"--weights applies to {' and '.join(WEIGHTED)}; {rule} does not weigh its members")
        if len(weights) != len(models):
            raise ZooError(f"--weights has {len(weights)} values for {len(models)} models")
        check_weights(weights)
    members = tuple(Augmented(m) if tta else m for m in models)
    return format_spec(Combined(rule, members, tuple(weights) if weights is not None else None))


def check_weights(weights: Sequence[float]) -> None:
    if any(not w >= 0 for w in weights) or not sum(weights) > 0:
        raise ZooError(f"weights must be non-negative and not all zero, got {','.join(f'{w:g}' for w in weights)}")


def parse_weights(text: Optional[str]) -> Optional[list[float]]:
    if text is None:
        return None
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise ZooError(f"--weights {text!r}: expected numbers separated by commas, e.g. 0.5,0.3,0.2") from None


# how a spec is spelled: (a plain model, an augmented member, a weighted member, an ensemble, between members)
_NAME = (lambda model: model, "{tta}({member})", "{part}*{weight:g}", "{rule}({parts})", ", ")
_FOLDER = (lambda model: model.replace(":", "_"), "{member}_{tta}", "{part}x{weight:g}", "{rule}_{parts}", "+")


def _spelled(spec: Spec, style: tuple) -> str:
    model, augmented, weighted, combined, joiner = style
    if isinstance(spec, str):
        return model(spec)
    if isinstance(spec, Augmented):
        return augmented.format(tta=TTA, member=_spelled(spec.member, style))
    parts = [_spelled(m, style) for m in spec.members]
    if spec.weights is not None:
        parts = [weighted.format(part=p, weight=w) for p, w in zip(parts, spec.weights)]
    return combined.format(rule=spec.rule, parts=joiner.join(parts))


def format_spec(spec: Spec) -> str:
    return _spelled(spec, _NAME)


def parse_spec(text: str) -> Spec:
    text = text.strip()
    if not is_composite(text):
        if not text or any(c in text for c in "(),*"):
            raise ZooError(f"cannot read the model name {text!r}")
        return text
    head, _, body = text.partition("(")
    head, body = head.strip(), body[:-1]
    if head == TTA:
        return Augmented(parse_spec(body))
    if head not in RULES:
        raise ZooError(f"cannot read {text!r}: {head!r} is neither tta nor an ensemble rule ({', '.join(RULES)})")
    members, weights = [], []
    for item in _split_top(body):
        name, star, weight = item.rpartition("*") if "*" in item.rsplit(")", 1)[-1] else (item, "", "")
        members.append(parse_spec(name))
        try:
            weights.append(float(weight) if star else 1.0)
        except ValueError:
            raise ZooError(f"cannot read the weight {weight!r} in {text!r}") from None
    if len(members) < 2:
        raise ZooError(f"{text!r}: an ensemble needs at least two members")
    given = any(w != 1.0 for w in weights)
    check_weights(weights)
    return Combined(head, tuple(members), tuple(weights) if given else None)


def _split_top(body: str) -> list[str]:
    """Split at the commas outside parentheses."""
    parts, depth, current = [], 0, ""
    for char in body:
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            raise ZooError(f"unbalanced parentheses in {body!r}")
        current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def folder_name(spec: Spec) -> str:
    """A portable folder name: ``avg-wave_A_one+A_two``, ``A_one_tta``, weights as ``x0.5``."""
    return _spelled(spec, _FOLDER)
