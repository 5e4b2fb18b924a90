"""Where a command runs: one spelling of ``--device`` for every command (separate, eval, stream, export, train).

``auto`` (the default everywhere) is CUDA when this torch build sees a GPU, else the CPU; ``cpu``; ``cuda`` (the
first GPU, or under torchrun the process's own, ``LOCAL_RANK``); ``cuda:N``. `parse_device` checks the spelling
(cheap, at option time); `resolve_device` also checks that the device exists, before any weights are loaded.
"""

from __future__ import annotations

import torch

from .errors import ZooError

AUTO = "auto"
DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"
DEVICE_HELP = "auto (CUDA when present, else the CPU), cpu, cuda or cuda:N."
_TYPES = ("cpu", "cuda")


def parse_device(name: str) -> str:
    """``name`` in its canonical spelling (``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``); a `ZooError` for
    anything else. Whether the device exists is `resolve_device`'s question."""
    text = str(name).strip().lower()
    if text == AUTO:
        return AUTO
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        device = None
    if device is None or device.type not in _TYPES or (device.type == "cpu" and device.index not in (None, 0)):
        raise ZooError(f"cannot use device {name!r}: choose {DEVICE_CHOICES}")
    return "cpu" if device.type == "cpu" else str(device)


def resolve_device(name: str, local_rank: int = 0, action: str = "use --device cpu") -> torch.device:
    """The device ``name`` stands for on this machine; ``auto`` and a bare ``cuda`` pick GPU ``local_rank``
    (modulo the GPUs present). A `ZooError` names a device that is not there, ending with ``action``."""
    text = parse_device(name)
    cuda = torch.cuda.is_available()
    if text == AUTO:
        text = "cuda" if cuda else "cpu"
    device = torch.device(text)
    if device.type == "cpu":
        return device
    if not cuda:
        raise ZooError(f"CUDA not available: this torch build or machine has no CUDA device; {action}")
    count = torch.cuda.device_count()
    if device.index is None:
        return torch.device("cuda", local_rank % count)
    if device.index >= count:
        raise ZooError(f"--device {text}: this machine has {count} CUDA device{'s' if count != 1 else ''} "
                       f"(cuda:0{f' to cuda:{count - 1}' if count > 1 else ''})")
    return device
