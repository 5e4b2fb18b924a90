"""Quieting torch's deprecation notices that users cannot act on, exactly those, where svs-zoo triggers them."""

from __future__ import annotations

import contextlib
import warnings
from typing import Iterator


@contextlib.contextmanager
def torchscript_deprecation_silenced() -> Iterator[None]:
    """TorchScript is deprecated upstream but is still the C++ deployment path; hide exactly that notice."""
    with warnings.catch_warnings():
        for category in (DeprecationWarning, FutureWarning):
            warnings.filterwarnings(
                "ignore", message=r"`torch\.jit\.(script|save|load|freeze|trace|trace_method)` is deprecated", category=category
            )
        yield


@contextlib.contextmanager
def leafspec_deprecation_silenced() -> Iterator[None]:
    """torch 2.13's AOTInductor packaging copies a pytree ``LeafSpec``, a class torch itself deprecates: hide
    exactly that notice (it is torch's to fix, not the user's)."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning
        )
        yield
