"""Exporting an ensemble as one file: members that share an STFT and a framing run their networks side by side
on one spectrogram image, and the weighted sum of their outputs is what the file's core gives.

For ``avg-wave`` this is the ensemble itself: the STFT, the framing's inverse (a complex-as-channels image, or a
magnitude given the mixture's phase) and the inverse STFT are linear, so averaging the networks' images equals
averaging the members' waveforms, segment by segment; and members that share an STFT share the segment geometry,
so overlap-add keeps it. The result is an ordinary `SeparationModel` whose network is `SideBySide`, and every
exporter (TorchScript, AOTInductor, ONNX: `zoo_core.export`) takes it as it is. Other rules are not linear
(median, per-bin picks) and test-time augmentation acts on the waveform; they are refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import List, Optional, Sequence

import torch
from torch import Tensor, nn

from ..errors import ZooError
from ..provenance import WeightsProvenance
from .names import Augmented, Combined, folder_name, parse_spec


class SideBySide(nn.Module):
    """Networks on the same image; out: ``sum(w_i * network_i(image))`` with the weights summing to 1."""

    def __init__(self, networks: Sequence[nn.Module], weights: Sequence[float]):
        super().__init__()
        total = float(sum(weights))
        self.networks = nn.ModuleList(networks)
        self.weights: List[float] = [float(w) / total for w in weights]
        self.time_factor: int = int(networks[0].time_factor)

    def forward(self, image: Tensor) -> Tensor:
        total = torch.zeros(0)
        index = 0
        for network in self.networks:
            term = network(image) * self.weights[index]
            total = term if index == 0 else total + term
            index += 1
        return total


def side_by_side(members: Sequence, weights: Optional[Sequence[float]] = None, variant: str = ""):
    """One `SeparationModel` for an avg-wave ensemble of ``members`` (SeparationModels with their weights)."""
    from ..model import SeparationModel

    first = members[0]
    shape = lambda m: (m.settings, m.representation, m.estimation, list(m.stems), m.time_factor)  # noqa: E731
    for member in members[1:]:
        if shape(member) != shape(first):
            raise ZooError("an ensemble exports as one file only when its members share the STFT, framing, stems and "
                           "network time factor (e.g. checkpoints of one model); separate with -m ... --ensemble")
    weights = list(weights) if weights is not None else [1.0] * len(members)
    network = SideBySide([m.network for m in members], weights)
    digest = hashlib.sha256()
    for member in members:
        digest.update(str(member.provenance.sha256 if member.provenance is not None else None).encode())
    known = first.provenance or WeightsProvenance(first.entry_name)
    provenance = dataclasses.replace(known, variant=variant, sha256=digest.hexdigest(), source_url="",
                                     source_git_sha1="")
    return SeparationModel(network, first.settings, first.stems, first.representation, first.estimation,
                           entry_name=first.entry_name, architecture=first.architecture,
                           default_overlap=first.default_overlap, provenance=provenance).eval()


def ensemble_for_export(name: str):
    """(model, registry entry of the first member, file stem) for ``zoo export NAME`` of a composite name."""
    from ..registry import get_entry
    from ..loading import load

    spec = parse_spec(name)
    if not isinstance(spec, Combined) or spec.rule != "avg-wave":
        raise ZooError("zoo export takes an avg-wave ensemble of plain models, e.g. 'avg-wave(A:one, "
                       "A:two)'; other rules and --tta are not linear in the networks' outputs")
    if any(not isinstance(m, str) for m in spec.members):
        raise ZooError("zoo export: the members of an exported ensemble are plain models (no tta(...) or nested "
                       "ensembles)")
    members = [load(m) for m in spec.members]
    stem = folder_name(spec)
    return side_by_side(members, spec.weights, variant=stem), get_entry(spec.members[0]), stem


def first_member(name: str) -> str:
    spec = parse_spec(name)
    while not isinstance(spec, str):
        spec = spec.member if isinstance(spec, Augmented) else spec.members[0]
    return spec
