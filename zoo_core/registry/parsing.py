"""Reading registry files (svs-zoo's ``registry.toml``, a plugin's, a training run's card) into `ModelEntry`s.

Every error is one line naming the file, the line and the field (``extra.toml:3: models.x.stft.n_fft: expected
an integer, got '2048'``). Options of an architecture or a block are checked later, against their builders.
"""

from __future__ import annotations

import difflib
import re
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Optional

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..builtin import builtin_registry_path
from ..errors import RegistryError
from ..framing import ESTIMATIONS, REPRESENTATIONS
from ..model import StftSettings
from .schema import ModelEntry, WeightVariant

Fields = dict[str, tuple[tuple[type, ...], str]]  # field -> (types, description); anything else is a typo
_INT, _NUM, _STR = ((int,), "an integer"), ((int, float), "a number"), ((str,), "a string")
_BOOL, _LIST, _TABLE = ((bool,), "true or false"), ((list,), "a list"), ((dict,), "a table")
_MODEL_FIELDS: Fields = dict(
    block=_STR, description=_STR, stems=_LIST, target=_STR, parameters=_INT, paper_sdr=_NUM, paper_sdr_set=_STR,
    paper=_STR, notes=_STR, default_variant=_STR, architecture=_TABLE, block_args=_TABLE, stft=_TABLE, variants=_TABLE,
    overlap=_NUM,
)  # target: a single stem, the same as stems = [target]
_STFT_FIELDS: Fields = dict(n_fft=_INT, hop_length=_INT, frames=_INT, center=_BOOL, sample_rate=_INT, bins=_INT)
_VARIANT_FIELDS: Fields = dict(
    url=_STR, file=_STR, git_sha1=_STR, sha256=_STR, bytes=_INT, format=_STR, layout=_STR, license=_STR,
    origin=_STR, paper_sdr=_NUM, notes=_STR, stft=_TABLE,
)


class _LineIndex:
    """Maps dotted TOML paths (``models.NAME.stft.n_fft``) to line numbers, for one-line errors."""

    _HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
    _KEY = re.compile(r"^\s*(\"[^\"]*\"|'[^']*'|[A-Za-z0-9_.-]+)\s*=")

    def __init__(self, text: str):
        self.lines: dict[str, int] = {}
        table: list[str] = []
        for number, line in enumerate(text.splitlines(), 1):
            header = self._HEADER.match(line)
            if header:
                table = self._split(header.group(1))
                self.lines.setdefault(".".join(table), number)
                continue
            key = self._KEY.match(line)
            if key:
                self.lines.setdefault(".".join(table + self._split(key.group(1))), number)

    @staticmethod
    def _split(dotted: str) -> list[str]:
        return [part.strip().strip("\"'") for part in re.findall(r"\"[^\"]*\"|'[^']*'|[^.]+", dotted)]

    def line(self, path: str) -> Optional[int]:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path.rpartition(".")[0]
        return None


class _Checker:
    """Type-checks one source's tables and raises `RegistryError` naming file, line and field."""

    def __init__(self, source: str, index: Optional[_LineIndex] = None):
        self.source = source
        self.index = index

    def fail(self, path: str, message: str) -> None:
        line = self.index.line(path) if self.index else None
        where = f"{self.source}:{line}" if line else self.source
        raise RegistryError(f"{where}: {path}: {message}")

    def table(self, path: str, values: Any, fields: Fields) -> dict:
        if not isinstance(values, dict):
            self.fail(path, "expected a table")
        for key, value in values.items():
            if key not in fields:
                close = difflib.get_close_matches(key, fields, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.fail(f"{path}.{key}", f"unknown field{hint}")
            types, described = fields[key]
            if isinstance(value, bool) and bool not in types or not isinstance(value, types):
                self.fail(f"{path}.{key}", f"expected {described}, got {value!r}")
        return values

    def _architecture(self, path: str, values: Any) -> dict:
        if not isinstance(values, dict):
            self.fail(path, "expected a table")
        checks = (("name", (str,), None), ("representation", (str,), REPRESENTATIONS), ("estimation", (str,), ESTIMATIONS))
        for key, types, allowed in checks:
            if key in values and (not isinstance(values[key], types) or allowed and values[key] not in allowed):
                self.fail(f"{path}.{key}", f"must be one of {allowed}" if allowed else f"expected a string, got {values[key]!r}")
        return values

    def _stems(self, path: str, values: Mapping[str, Any]) -> tuple[str, ...]:
        if "stems" in values and "target" in values:
            self.fail(f"{path}.target", "give either stems or target (a single stem), not both")
        stems = values.get("stems", [values.get("target", "vocals")])
        if not stems or not all(isinstance(s, str) and s for s in stems) or len(set(stems)) != len(stems):
            self.fail(f"{path}.stems", f"expected a list of distinct stem names, got {stems!r}")
        return tuple(stems)

    def model(self, name: str, values: Any, prefix: str = "models") -> ModelEntry:
        path = f"{prefix}.{name}"
        self.table(path, values, _MODEL_FIELDS)
        architecture = self._architecture(f"{path}.architecture", values.get("architecture", {}))
        stft = StftSettings(**self.table(f"{path}.stft", values.get("stft", {}), _STFT_FIELDS))
        variants = {}
        for variant_name, variant in values.get("variants", {}).items():
            vpath = f"{path}.variants.{variant_name}"
            self.table(vpath, variant, _VARIANT_FIELDS)
            self.table(f"{vpath}.stft", variant.get("stft", {}), _STFT_FIELDS)
            variants[variant_name] = WeightVariant(name=variant_name, **variant)
        if not 0 <= values.get("overlap", 0) < 1:
            self.fail(f"{path}.overlap", f"must be a fraction in [0, 1), got {values['overlap']!r}")
        default = values.get("default_variant")
        if default is not None and default not in variants:
            self.fail(f"{path}.default_variant", f"{default!r} is not one of its variants {sorted(variants)}")
        if default is None and variants:
            default = next(iter(variants))
        if "name" not in architecture:
            self.fail(f"{path}.architecture", "missing required field 'name' (the architecture that builds it)")
        fields = {k: v for k, v in values.items() if k not in ("stft", "variants", "default_variant", "target", "stems")}
        return ModelEntry(
            name=name, stems=self._stems(path, values), stft=stft, variants=variants, default_variant=default,
            source=self.source, **fields,
        )


def entries_from_toml(path: str | Path, source: Optional[str] = None, section: Optional[str] = None) -> list[ModelEntry]:
    """Parse every ``[models.NAME]`` table of a registry file (a plugin's, or a lab's own), or with ``section``
    every ``[SECTION.models.NAME]`` table (svs-zoo's registry.toml groups its models per plugin).

    Other tables (a training card's ``[training]``) are not read.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read registry: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{path}: invalid TOML: {exc}") from None
    checker = _Checker(str(path), _LineIndex(text))
    prefix = "models" if section is None else f"{section}.models"
    models = data.get("models", {}) if section is None else data.get(section, {}).get("models", {})
    if not isinstance(models, dict):
        checker.fail(prefix, "expected a table of models")
    entries = [checker.model(name, values, prefix) for name, values in models.items()]
    if source is None:
        return entries
    return [replace(entry, source=source) for entry in entries]


def entry_from_mapping(values: Mapping[str, Any], source: str) -> ModelEntry:
    """A plugin's ``register(mapping)``: one ``[models.NAME]`` table with an extra ``name`` key."""
    values = dict(values)
    name = values.pop("name", None)
    if not isinstance(name, str) or not name:
        raise RegistryError(f"{source}: a registered model needs a 'name'")
    return _Checker(source).model(name, values, prefix="model")


def builtin_entries(plugin: str) -> list[ModelEntry]:
    """The models svs-zoo's registry.toml lists for the built-in plugin ``plugin`` (its ``[PLUGIN.models.*]``
    tables), for that plugin's `register_models` hook."""
    return entries_from_toml(builtin_registry_path(), source=plugin, section=plugin)
