"""The architecture interface: a network family (its skeleton and builder) that a plugin registers.

An architecture turns a registry entry's ``[architecture]`` table into the network inside a `SeparationModel`.
The zoo wraps every network in the same spectrogram pipeline (``zoo_core.model``), so separation, training,
evaluation, export and the C++ host work for every architecture without knowing which one it is. The network:

- reads the image ``[batch, ctx.in_channels, ctx.bins, frames]`` (frequency before time, as the STFT gives it);
- returns ``[batch, ctx.stems, ctx.in_channels, ctx.bins, frames]``, one image per stem;
- has an int attribute ``time_factor``: the frame counts it accepts are its multiples;
- is TorchScript-scriptable (``torch.jit.script``), or declares ``torchscript = "trace"`` and is traceable: the
  TorchScript export (for the C++ host) then traces it at the export's segment geometry (`zoo_core.export.tracing`).

Architectures built from intermediate blocks ask ``ctx.block(...)`` for each block; the entry's ``block`` and
``block_args`` choose which (see `zoo_core.blocks`). A family also brings what only it knows: converters from
the tensor names of released checkpoints (`Conversion`), its exact inference rewrite (``optimize``) and its
initialisation for training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping, Optional

from torch import Tensor, nn

from .blocks import BlockContext, BlockType
from .errors import ConfigError
from .builders import Built

TORCHSCRIPT_MODES = ("script", "trace")  # Architecture.torchscript: how its networks become TorchScript


@dataclass(frozen=True)
class NetworkContext:
    """What an architecture's builder gets besides the entry's options."""

    in_channels: int  # image channels: 4 for complex-as-channels stereo, 2 for magnitudes
    bins: int  # image bins (frequency rows the network sees)
    frames: int  # frames of the training window (informative for convolutional networks)
    stems: int  # images the network returns, one per stem
    block_type: Optional[BlockType] = None  # the entry's block, for architectures built from blocks
    block_args: Mapping[str, Any] = field(default_factory=dict)

    def block(self, ctx: BlockContext) -> nn.Module:
        """One intermediate block of the entry's block type at the place ``ctx`` describes."""
        if self.block_type is None:
            raise ConfigError("this architecture is built from blocks, but the model names no block")
        return self.block_type.create(ctx, self.block_args)


@dataclass(frozen=True)
class Conversion:
    """A released checkpoint under the zoo's tensor names, as an architecture's ``convert`` returns it.

    tensors:      the network's state_dict
    layout:       whose names the file used (recorded with the cached weights, e.g. ``ismir2020``)
    stft:         STFT settings the file records beside its tensors (e.g. saved hyper-parameters), if any
    implied_stft: settings the layout implies whatever the file records (code that always centred its STFT:
                  ``{"center": True}``), so a framing that contradicts them is never guessed
    format:       how the file was stored, when the layout says more than the zoo's unwrapping (e.g. a
                  training framework's checkpoint); None: as the zoo found it
    """

    tensors: Mapping[str, Tensor]
    layout: str
    stft: Mapping[str, Any] = field(default_factory=dict)
    implied_stft: Mapping[str, Any] = field(default_factory=dict)
    format: Optional[str] = None


# a state_dict (and, for a converter with a second parameter, the whole loaded file) → a Conversion (or a
# (tensors, layout) pair), or None when the checkpoint is not in a layout of this family
Converter = Callable[..., Optional[Conversion]]
# the network, the dtype to run in and the target: "process" (this process), or an export format
# ("torchscript", "aoti", "onnx") → an exact, faster inference network
Optimizer = Callable[[nn.Module, Any, str], nn.Module]


@dataclass(frozen=True)
class Architecture(Built):
    """A network family a plugin provides.

    name:        registry name, used as ``architecture = { name = "..." }`` (lower case, digits, ``-_.``)
    build:       ``build(ctx: NetworkContext, *, option=default, ...) -> nn.Module``; its keyword defaults are the
                 options an entry's ``[architecture]`` table may set
    uses_blocks: whether entries must name a ``block`` (the skeleton asks ``ctx.block`` for its blocks)
    describe:    optional ``describe(network) -> dict`` for ``zoo info`` (e.g. ``levels``: per-level shapes)
    convert:     optional ``convert(state_dict[, checkpoint]) -> Conversion or None``: recognise a checkpoint in
                 an original layout of this family (other code's tensor names) and rename it to ours; None when
                 it is not one of the family's. It gets the plain state_dict (the zoo has already taken it out
                 of a checkpoint dict and removed ``module.``/``model.`` prefixes) and, if it takes a second
                 argument, the whole loaded file
    initialise:  optional ``initialise(network)``: the family's own initialisation for training from scratch
                 (PyTorch's defaults without it)
    optimize:    optional ``optimize(network, dtype, target) -> network``: an exact, faster inference network
                 (`zoo_core.inference.optimize` calls it on a copy; without it the network runs as built).
                 ``target`` is ``"process"`` (this process, any kernel) or the export format the network goes
                 into (``"torchscript"``, ``"aoti"``, ``"onnx"``): only what that format's hosts can run
    description: one line for ``zoo list`` / ``zoo info``
    unsupported: export formats (``zoo export --format``) its networks cannot be written to, each with the
                 reason in one line; `zoo export` refuses them with it (a test matrix checks every other one)
    torchscript: how the TorchScript export turns its network into TorchScript: ``"script"`` (``torch.jit.script``)
                 or ``"trace"`` (``torch.jit.trace`` at the export's segment geometry, for a network written with
                 Python that TorchScript cannot compile); the same self-check against eager follows either way
    """

    kind: ClassVar[str] = "architecture"
    name: str
    build: Callable[..., nn.Module]
    uses_blocks: bool = True
    describe: Optional[Callable[[nn.Module], dict]] = None
    convert: Optional[Converter] = None
    initialise: Optional[Callable[[nn.Module], None]] = None
    optimize: Optional[Optimizer] = None
    description: str = ""
    unsupported: Mapping[str, str] = field(default_factory=dict)
    torchscript: str = "script"
    plugin: str = ""  # filled in by the plugin manager

    def validate(self) -> None:
        super().validate()
        if self.torchscript not in TORCHSCRIPT_MODES:
            raise ConfigError(f"architecture {self.name!r}: torchscript must be one of "
                              f"{', '.join(map(repr, TORCHSCRIPT_MODES))}, got {self.torchscript!r}")

    def create(self, ctx: NetworkContext, options: Mapping[str, Any]) -> nn.Module:
        """Build the network; it must say which frame counts it accepts."""
        network = self.build_checked(ctx, options)
        factor = getattr(network, "time_factor", None)
        if not isinstance(factor, int) or isinstance(factor, bool) or factor < 1:
            raise ConfigError(f"architecture {self.name!r}: its network needs a positive int attribute time_factor")
        return network
