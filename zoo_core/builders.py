"""What plugins register with a builder (blocks, architectures), and their hyper-parameters.

A builder's keyword arguments and their defaults are the one place its options are written: `keyword_defaults`
reads them (for ``zoo info`` and the docs), `bind_options` checks a registry entry's values against them
(unknown names with a suggestion, wrong types) before anything is built. `Built` is what `BlockType` and
`Architecture` share: a checked name, a builder, its defaults and a checked build, and the export formats it
declares it cannot be written to (``unsupported``: format -> the reason, one line).
"""

from __future__ import annotations

import difflib
import functools
import inspect
import re
from typing import Any, Callable, ClassVar, Mapping

from torch import nn

from .errors import ConfigError

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
EXPORT_FORMATS = ("torchscript", "aoti", "onnx")  # what `zoo export --format` writes


class Built:
    """Mixin for a registered thing with ``name`` and ``build(context, *, option=default, ...)``."""

    kind: ClassVar[str] = "thing"
    name: str
    build: Callable[..., nn.Module]

    @property
    def defaults(self) -> dict[str, Any]:
        """The builder's keyword arguments and their defaults: the one place its options are written."""
        return keyword_defaults(self.build, skip=1)

    def validate(self) -> None:
        """Raise `ConfigError` if this registration cannot be used (a malformed plugin registration)."""
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ConfigError(f"invalid {self.kind} name {self.name!r}: use lower-case letters, digits, '-', '_', '.'")
        if not callable(self.build):
            raise ConfigError(f"{self.kind} {self.name!r}: build must be callable, got {type(self.build).__name__}")
        unsupported = getattr(self, "unsupported", {})
        for fmt, reason in dict(unsupported).items():
            if fmt not in EXPORT_FORMATS:
                raise ConfigError(f"{self.kind} {self.name!r}: unsupported names {fmt!r}; export formats are "
                                  f"{', '.join(EXPORT_FORMATS)}")
            if not isinstance(reason, str) or not reason.strip() or "\n" in reason:
                raise ConfigError(f"{self.kind} {self.name!r}: unsupported[{fmt!r}] must be one line saying why")

    def build_checked(self, context: Any, given: Mapping[str, Any]) -> nn.Module:
        """Build with ``given`` options over the defaults; check that the builder kept the interface."""
        values = bind_options(self.build, given, f"{self.kind} {self.name!r}", skip=1)
        module = self.build(context, **values)
        if not isinstance(module, nn.Module):
            raise ConfigError(f"{self.kind} {self.name!r} builder returned {type(module).__name__}, not an nn.Module")
        return module


def _parameters(builder: Callable, skip: int) -> list[inspect.Parameter]:
    parameters = list(inspect.signature(builder).parameters.values())[skip:]
    fixed = builder.keywords if isinstance(builder, functools.partial) else {}  # bound by the plugin itself
    return [p for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in fixed]


def keyword_defaults(builder: Callable, skip: int = 0) -> dict[str, Any]:
    """``{name: default}`` of the builder's keyword arguments after the first ``skip`` (the context)."""
    return {p.name: p.default for p in _parameters(builder, skip) if p.default is not inspect.Parameter.empty}


def _fits(value: Any, default: Any) -> bool:
    if default is None or value is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def bind_options(builder: Callable, given: Mapping[str, Any], what: str, skip: int = 0) -> dict[str, Any]:
    """The builder's defaults updated with ``given``; a `ConfigError` naming ``what`` for unknown names, missing
    required values or values of another type than the default's."""
    parameters = {p.name: p for p in _parameters(builder, skip)}
    accepts_any = any(p.kind == p.VAR_KEYWORD for p in inspect.signature(builder).parameters.values())
    for name, value in given.items():
        if name not in parameters:
            if accepts_any:
                continue
            close = difflib.get_close_matches(name, list(parameters), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (accepted: {', '.join(parameters) or 'none'})"
            raise ConfigError(f"{what}: unknown argument {name!r}{hint}")
        default = parameters[name].default
        if default is not inspect.Parameter.empty and not _fits(value, default):
            raise ConfigError(
                f"{what}: {name} must be a {type(default).__name__} like its default {default!r}, got {value!r}"
            )
    values = keyword_defaults(builder, skip)
    values.update(given)
    missing = [name for name in parameters if name not in values]
    if missing:
        raise ConfigError(f"{what}: missing required argument(s) {', '.join(missing)}")
    return values
