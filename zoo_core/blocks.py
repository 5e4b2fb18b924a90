"""The intermediate-block interface: what a plugin's builder receives and what it must return.

An architecture built from blocks (a skeleton in a family's plugin) owns everything outside the blocks: its
first and last layers, down- and up-sampling, skips. At each place where it puts an intermediate block it asks
the block type's builder for a module, passing a `BlockContext`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping

from torch import nn

from .errors import ConfigError
from .builders import Built

SAMPLING_SCHEMES = ("frequency", "time-frequency")
POSITIONS = ("encoder", "middle", "decoder")


@dataclass(frozen=True)
class BlockContext:
    """Where a block sits in its skeleton.

    Tensors entering the block are ``[batch, in_channels, frames, bins]``; the block must return
    ``[batch, out_channels, frames, bins]``. ``frames`` is the number of frames at this level for the
    model's training window (convolutional blocks work on any number of frames; it is informative).
    """

    in_channels: int
    out_channels: int
    bins: int
    frames: int
    level: int
    position: str  # "encoder", "middle" or "decoder"


Builder = Callable[..., nn.Module]


@dataclass(frozen=True)
class BlockType(Built):
    """A kind of intermediate block a plugin provides.

    name:        registry name, e.g. ``"my-block"`` (lower case, digits, ``-``, ``_``, ``.``)
    build:       ``build(ctx: BlockContext, *, arg=default, ...) -> nn.Module``; its keyword defaults are the
                 block's defaults (`defaults`), which a model entry's ``block_args`` override
    sampling:    the sampling scheme of the skeleton it is designed for: ``"frequency"`` (time never
                 down-sampled) or ``"time-frequency"`` (both axes down-sampled)
    description: one line for ``zoo list``/``zoo info``
    unsupported: export formats (``zoo export --format``) that networks with this block cannot be written to,
                 each with the reason in one line; `zoo export` refuses them with it
    """

    kind: ClassVar[str] = "block"
    name: str
    build: Builder
    sampling: str = "time-frequency"
    description: str = ""
    unsupported: Mapping[str, str] = field(default_factory=dict)
    plugin: str = ""  # filled in by the plugin manager

    def validate(self) -> None:
        super().validate()
        if self.sampling not in SAMPLING_SCHEMES:
            raise ConfigError(f"block {self.name!r}: sampling must be one of {SAMPLING_SCHEMES}, got {self.sampling!r}")

    def create(self, ctx: BlockContext, block_args: Mapping[str, Any]) -> nn.Module:
        """Build one block at the place ``ctx`` describes."""
        return self.build_checked(ctx, block_args)
