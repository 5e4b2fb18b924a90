"""The architecture interface: a network family (its skeleton and builder) that a plugin registers.

An architecture turns a registry entry's ``[architecture]`` table into the network inside a `SeparationModel`.
The zoo wraps every network in the same spectrogram pipeline (``zoo_core.model``), so separation, training,
evaluation, export and the C++ host work for every architecture without knowing which one it is. The network:

- reads the image ``[batch, ctx.in_channels, ctx.bins, frames]`` (frequency before time, as the STFT gives it);
- returns ``[batch, ctx.stems, ctx.in_channels, ctx.bins, frames]``, one image per stem;
- has an int attribute ``time_factor``: the frame counts it accepts are its multiples;
- is TorchScript-scriptable (``torch.jit.script``), or declares ``torchscript = "trace"`` and is traceable: the
  TorchScript export (for the C++ host) then traces it at the export's segment geometry (`zoo_core.export.tracing`).

Architectures built from intermediate blocks (the paper's U-Net, TFC-TDF-UNet v3) ask ``ctx.block(...)`` for
each block; the entry's ``block`` and ``block_args`` choose which (see `zoo_core.blocks`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping, Optional

from torch import Tensor, nn

from .blocks import BlockContext, BlockType
from .errors import ConfigError
from .options import Built
DEFAULT_ARCHITECTURE = "unet"  # Choi et al., ISMIR 2020: the zoo's founding skeleton
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


# an original checkpoint as loaded (a state_dict, or wrapped in a dict) → (its tensors under our names, the
# layout's name), or None when the checkpoint is not in a layout of this family
Converter = Callable[[Any], Optional[tuple[dict[str, Tensor], str]]]


@dataclass(frozen=True)
class Architecture(Built):
    """A network family a plugin provides.

    name:        registry name, used as ``architecture = { name = "..." }`` (lower case, digits, ``-_.``)
    build:       ``build(ctx: NetworkContext, *, option=default, ...) -> nn.Module``; its keyword defaults are the
                 options an entry's ``[architecture]`` table may set
    uses_blocks: whether entries must name a ``block`` (the skeleton asks ``ctx.block`` for its blocks)
    describe:    optional ``describe(network) -> dict`` for ``zoo info`` (e.g. ``levels``: per-level shapes)
    convert:     optional ``convert(state_dict) -> (state_dict, layout) or None``: recognise a checkpoint in an
                 original layout of this family (other code's tensor names), rename it to ours and name the
                 layout; None when it is not one of the family's. It gets the plain state_dict: the importer has
                 already taken it out of a checkpoint dict and removed ``module.``/``model.`` prefixes
    initialise:  optional ``initialise(network)``: the family's own initialisation for training from scratch
                 (PyTorch's defaults without it)
    optimize:    optional ``optimize(network, dtype, portable) -> network``: an exact, faster inference copy, in
                 place of `zoo_core.inference.optimize`'s generic rewrite (BatchNorm folding, channels-last);
                 with ``portable`` (exported files) only what runs on every device and host
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
    optimize: Optional[Callable[[nn.Module, Any], nn.Module]] = None
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
