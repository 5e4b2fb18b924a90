"""Finding and loading plugins: entry points of the group ``svs_zoo.plugins``.

Built-in blocks are found exactly like third-party ones. A source checkout that is not installed (torch.hub
imports one straight from its folder) has no entry points of its own; its built-in plugins are then read from
its ``pyproject.toml`` and imported from its ``plugins/`` folder. A plugin that fails to import, has hook
implementations pluggy rejects, or raises inside a hook is recorded with its error and skipped; the rest load.
``ZOO_DISABLE_PLUGINS=name,...`` skips plugins by entry-point name.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pluggy

from . import hookspecs
from .errors import first_line

ENTRY_POINT_GROUP = "svs_zoo.plugins"
DISABLE_ENV = "ZOO_DISABLE_PLUGINS"
DISTRIBUTION = "svs-zoo"
SOURCE_ROOT = Path(__file__).resolve().parent.parent  # a checkout's root, or site-packages when installed


@dataclass
class PluginStatus:
    name: str
    distribution: str = ""
    version: str = ""
    module: str = ""
    hooks: list[str] = field(default_factory=list)
    error: Optional[str] = None  # why it (or part of it) failed to load
    disabled: bool = False

    @property
    def loaded(self) -> bool:
        return not self.disabled and self.error is None


def disabled_plugins() -> set[str]:
    return {name.strip() for name in os.environ.get(DISABLE_ENV, "").split(",") if name.strip()}


def _normalise(distribution: str) -> str:
    return distribution.lower().replace("_", "-")


def _plugin_entry_points():
    """(distribution, entry point) pairs, one distribution per name (the first on sys.path wins)."""
    seen: set[str] = set()
    for dist in metadata.distributions():
        dist_name = _normalise(dist.metadata["Name"] or "")
        if dist_name in seen:
            continue
        seen.add(dist_name)
        for ep in dist.entry_points:
            if ep.group == ENTRY_POINT_GROUP:
                yield dist, ep


def source_checkout_plugins(root: Path = SOURCE_ROOT) -> Iterator[tuple[str, str]]:
    """(entry-point name, module) of the built-in plugins declared in ``root/pyproject.toml``; nothing when
    ``root`` is not an svs-zoo source checkout. Puts ``root/plugins`` on ``sys.path`` so they import."""
    pyproject, folder = root / "pyproject.toml", root / "plugins"
    if not pyproject.is_file() or not folder.is_dir():
        return
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return
    if project.get("name") != DISTRIBUTION:
        return
    if str(folder) not in sys.path:
        sys.path.append(str(folder))
    yield from project.get("entry-points", {}).get(ENTRY_POINT_GROUP, {}).items()


class PluginSet:
    """A pluggy manager plus what happened to each plugin while loading."""

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager(hookspecs.PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self.statuses: dict[str, PluginStatus] = {}

    def add(self, plugin: Any, name: str, distribution: str = "", version: str = "") -> PluginStatus:
        """Register one plugin object (a module, usually); errors are recorded, not raised."""
        status = self.statuses.setdefault(name, PluginStatus(name, distribution, version))
        status.module = getattr(plugin, "__name__", type(plugin).__name__)
        try:
            self.manager.register(plugin, name=name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            status.error = first_line(exc, with_type=True)
        return status

    def load_entry_points(self) -> None:
        disabled = disabled_plugins()
        installed = False
        for dist, ep in _plugin_entry_points():
            installed |= _normalise(dist.metadata["Name"] or "") == DISTRIBUTION
            self._load(PluginStatus(ep.name, dist.metadata["Name"], dist.version, ep.value), ep.load, disabled)
        if not installed:  # svs-zoo itself runs from a source folder: its own plugins are declared there
            from . import __version__

            for name, module in source_checkout_plugins():
                load = lambda module=module: importlib.import_module(module)  # noqa: E731
                self._load(PluginStatus(name, f"{DISTRIBUTION} (source checkout)", __version__, module), load, disabled)
        self._drop_unknown_hooks()
        for name, status in self.statuses.items():
            plugin = self.manager.get_plugin(name)
            if plugin is not None:
                status.hooks = sorted(caller.name for caller in self.manager.get_hookcallers(plugin) or [])

    def _load(self, status: PluginStatus, load: Callable[[], Any], disabled: set[str]) -> None:
        name = status.name
        if name in self.statuses:
            first = self.statuses[name]
            status.error = f"plugin name {name!r} is also used by {first.distribution} {first.version}; skipped"
            self.statuses[f"{name} ({status.distribution})"] = status
            return
        self.statuses[name] = status
        if name in disabled:
            status.disabled = True
            return
        try:
            plugin = load()
        except Exception as exc:  # a broken plugin must not stop the others
            status.error = f"import failed: {first_line(exc, with_type=True)}"
            return
        self.add(plugin, name, status.distribution, status.version)

    def _drop_unknown_hooks(self) -> None:
        # check_pending raises for the first hook implementation without a specification; unregister that
        # plugin and look again until everything left is valid.
        while True:
            try:
                self.manager.check_pending()
                return
            except pluggy.PluginValidationError as exc:
                name = self.manager.get_name(exc.plugin)
                self.manager.unregister(exc.plugin)
                if name in self.statuses:
                    self.statuses[name].error = first_line(exc, with_type=True)

    def call_each(self, hook_name: str, make_register: Callable[[str], Callable[[Any], None]]) -> None:
        """Call one hook plugin by plugin, each with its own ``register`` callback; isolate failures."""
        caller = getattr(self.manager.hook, hook_name)
        for impl in reversed(caller.get_hookimpls()):  # registration order
            register = make_register(impl.plugin_name)
            kwargs = {arg: register for arg in impl.argnames if arg == "register"}
            try:
                impl.function(**kwargs)
            except Exception as exc:
                status = self.statuses.setdefault(impl.plugin_name, PluginStatus(impl.plugin_name))
                status.error = f"{hook_name} failed: {first_line(exc, with_type=True)}"
