"""Quieting TorchScript's deprecation notice, exactly that one, where svs-zoo scripts, saves or loads."""

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
                "ignore", message=r"`torch\.jit\.(script|save|load|freeze)` is deprecated", category=category
            )
        yield
