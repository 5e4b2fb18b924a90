"""Assembling the catalogue: what plugins register (architectures, blocks, models) plus the registry files.

Built once per process (`get_catalogue`), in this order: every plugin's architectures and blocks, every plugin's
models (svs-zoo's built-in plugins register those of its ``registry.toml``), the files in ``ZOO_REGISTRY``. A malformed registration is
recorded on its plugin (``zoo plugins`` shows it) and skipped; two plugins claiming one name is a conflict that
stops every command with a line naming both. A model whose architecture or block no loaded plugin provides is
hidden, with the reason.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional

from ..architectures import Architecture
from ..blocks import BlockType
from ..errors import PluginError, RegistryError, ZooError
from ..plugins import PluginSet
from .parsing import entries_from_toml, entry_from_mapping
from .schema import ModelEntry


@dataclass
class ModelCatalogue:
    """What the loaded plugins and registry files provide: architectures, blocks and named models."""

    plugins: PluginSet
    architectures: dict[str, Architecture] = field(default_factory=dict)
    blocks: dict[str, BlockType] = field(default_factory=dict)
    models: dict[str, ModelEntry] = field(default_factory=dict)
    hidden: dict[str, str] = field(default_factory=dict)  # model name -> why it is not available
    conflicts: list[str] = field(default_factory=list)

    def check(self) -> None:
        if self.conflicts:
            raise PluginError(self.conflicts[0])

    def warnings(self) -> list[str]:
        lines = [f"plugin {s.name!r} not loaded: {s.error}" for s in self.plugins.statuses.values() if s.error]
        lines += [f"model {name!r} unavailable: {why}" for name, why in self.hidden.items()]
        return lines

    def missing_parts(self, entry: ModelEntry) -> Optional[str]:
        """Why ``entry`` cannot be built with the loaded plugins, or None."""
        architecture = self.architectures.get(entry.architecture_name)
        if architecture is None:
            return f"architecture {entry.architecture_name!r} is not provided by any loaded plugin"
        if architecture.uses_blocks and not entry.block:
            return f"architecture {architecture.name!r} is built from blocks, but the model names no block"
        if architecture.uses_blocks and entry.block not in self.blocks:
            return f"block {entry.block!r} is not provided by any loaded plugin"
        return None


def _describe_plugin(plugins: PluginSet, name: str) -> str:
    status = plugins.statuses.get(name)
    if status and status.distribution:
        return f"plugin {name!r} ({status.distribution} {status.version})"
    return f"plugin {name!r}"


def build_catalogue(plugins: Optional[PluginSet] = None, registry_files: Iterable[Path] = ()) -> ModelCatalogue:
    if plugins is None:
        plugins = PluginSet()
        plugins.load_entry_points()
    cat = ModelCatalogue(plugins)

    def named_things(kind: str, cls: type, store: dict[str, Any]) -> Callable[[str], Callable[[Any], None]]:
        """The ``register`` callback factory for architectures or blocks: validate, stamp the plugin, keep one."""

        def for_plugin(plugin_name: str) -> Callable[[Any], None]:
            def register(thing: Any) -> None:
                status = plugins.statuses[plugin_name]
                try:
                    if not isinstance(thing, cls):
                        raise ZooError(f"register() expects a zoo_core.{cls.__name__}, got {type(thing).__name__}")
                    thing.validate()
                except ZooError as exc:
                    status.error = f"malformed {kind}: {exc}"
                    return
                thing = replace(thing, plugin=plugin_name)
                if thing.name in store:
                    other = store[thing.name].plugin
                    cat.conflicts.append(
                        f"{kind} {thing.name!r} is registered by both {_describe_plugin(plugins, other)} and "
                        f"{_describe_plugin(plugins, plugin_name)}; disable one with ZOO_DISABLE_PLUGINS"
                    )
                    return
                store[thing.name] = thing

            return register

        return for_plugin

    def add_model(entry: ModelEntry) -> None:
        if entry.name in cat.models:
            other = cat.models[entry.name].source
            cat.conflicts.append(
                f"model {entry.name!r} is defined by both {other} and {entry.source}; disable one plugin with "
                "ZOO_DISABLE_PLUGINS"
            )
            return
        cat.models[entry.name] = entry

    def model_register(plugin_name: str) -> Callable[[Any], None]:
        def register(entry: Any) -> None:
            status = plugins.statuses[plugin_name]
            try:
                if isinstance(entry, Mapping):
                    entry = entry_from_mapping(entry, source=plugin_name)
                elif not isinstance(entry, ModelEntry):
                    raise RegistryError(f"register() expects a mapping or ModelEntry, got {type(entry).__name__}")
                else:
                    entry = replace(entry, source=plugin_name)
            except ZooError as exc:
                status.error = f"malformed model: {exc}"
                return
            add_model(entry)

        return register

    plugins.call_each("register_architectures", named_things("architecture", Architecture, cat.architectures))
    plugins.call_each("register_blocks", named_things("block", BlockType, cat.blocks))
    plugins.call_each("register_models", model_register)
    for path in registry_files:
        for entry in entries_from_toml(path):
            add_model(entry)

    for name, entry in list(cat.models.items()):
        why = cat.missing_parts(entry)
        if why is not None:
            cat.hidden[name] = why
            del cat.models[name]
    return cat


def extra_registry_files() -> list[Path]:
    """Registry files named in ``ZOO_REGISTRY`` (os.pathsep-separated), e.g. a lab's own catalogue."""
    return [Path(p) for p in os.environ.get("ZOO_REGISTRY", "").split(os.pathsep) if p.strip()]


@functools.lru_cache(maxsize=1)
def get_catalogue() -> ModelCatalogue:
    return build_catalogue(registry_files=extra_registry_files())


def reset_catalogue() -> None:
    """Forget loaded plugins and models (tests, or after installing a plugin in a running process)."""
    get_catalogue.cache_clear()
