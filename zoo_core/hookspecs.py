"""The hooks a svs-zoo plugin can implement.

A plugin is any importable module (or object) exposed under the entry-point group ``svs_zoo.plugins``::

    [project.entry-points."svs_zoo.plugins"]
    my-block = "my_package.zoo_plugin"

and decorated with ``zoo_core.hookimpl``. Each hook receives a ``register`` callback; call it once per thing
you provide. Return values are ignored. Hooks are called once, the first time the zoo needs blocks or models.
Hooks are called with keyword arguments, so an implementation may accept only the arguments it needs.
"""

from __future__ import annotations

import pluggy

PROJECT = "svs_zoo"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_architectures(register):
    """Register architectures: network families with their own skeleton and builder.

    Call ``register(Architecture(...))`` for each (see ``zoo_core.architectures.Architecture``). The builder
    ``build(ctx: NetworkContext, *, option=default, ...) -> nn.Module`` maps the spectrogram image
    ``[B, ctx.in_channels, ctx.bins, T]`` to one image per stem, ``[B, ctx.stems, ctx.in_channels, ctx.bins, T]``,
    and gives the network an int ``time_factor`` (T must be a multiple of it). A registry entry picks it with
    ``architecture = { name = "...", option = value, ... }``.
    Names are global: two plugins registering one name is an error naming both.
    """


@hookspec
def register_blocks(register):
    """Register intermediate blocks.

    Call ``register(BlockType(...))`` for each block type (see ``zoo_core.blocks.BlockType``). A block type
    names a builder ``build(ctx: BlockContext, **block_args) -> nn.Module`` that maps ``[B, ctx.in_channels,
    T, ctx.bins]`` to ``[B, ctx.out_channels, T, ctx.bins]``, the sampling scheme it is meant for, and
    default block arguments. Names are global: two plugins registering one name is an error naming both.
    """


@hookspec
def register_models(register):
    """Register named models (and their weight variants).

    Call ``register(entry)`` where ``entry`` is a mapping in the same schema as one ``[models.NAME]`` table
    of svs-zoo's ``registry.toml`` with an extra ``name`` key, or a ``zoo_core.registry.ModelEntry``. Use
    ``zoo_core.registry.entries_from_toml(path)`` to register every model of a TOML file shipped with your
    package.
    """
