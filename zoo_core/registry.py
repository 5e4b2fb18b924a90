"""The catalogue of named models: svs-zoo's ``registry.toml`` plus the models and blocks plugins register.

Names may carry a weights variant, timm-style: ``tfc-tdf-large:paper``. Queries are small functions over
plain dicts: `list_models`, `get_entry`, `resolve`, `create_model`.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import os
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .blocks import BlockType
from .errors import ConfigError, PluginError, RegistryError, UnknownModelError, ZooError
from .model import ESTIMATIONS, REPRESENTATIONS, SeparationModel, StftSettings
from .plugins import PluginSet
from .unet import UNetConfig

BUILTIN_SOURCE = "svs-zoo"

# field -> (types, description); anything else in a table is a typo and an error
_INT = (int,)
_NUM = (int, float)
_STR = (str,)
_BOOL = (bool,)
_MODEL_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "block": (_STR, "a string"),
    "description": (_STR, "a string"),
    "target": (_STR, "a string"),
    "parameters": (_INT, "an integer"),
    "paper_sdr": (_NUM, "a number"),
    "paper": (_STR, "a string"),
    "notes": (_STR, "a string"),
    "default_variant": (_STR, "a string"),
    "architecture": ((dict,), "a table"),
    "block_args": ((dict,), "a table"),
    "stft": ((dict,), "a table"),
    "variants": ((dict,), "a table"),
}
_ARCH_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "n_blocks": (_INT, "an integer"),
    "channels": (_INT, "an integer"),
    "sampling": (_STR, "a string"),
    "time_down_levels": ((list,), "a list of integers"),
    "representation": (_STR, "a string"),
    "estimation": (_STR, "a string"),
    "output_activation": (_STR, "a string"),
    "first_activation": (_STR, "a string"),
}
_STFT_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "n_fft": (_INT, "an integer"),
    "hop_length": (_INT, "an integer"),
    "frames": (_INT, "an integer"),
    "center": (_BOOL, "true or false"),
    "sample_rate": (_INT, "an integer"),
}
_VARIANT_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "url": (_STR, "a string"),
    "file": (_STR, "a string"),
    "git_sha1": (_STR, "a string"),
    "sha256": (_STR, "a string"),
    "bytes": (_INT, "an integer"),
    "format": (_STR, "a string"),
    "layout": (_STR, "a string"),
    "license": (_STR, "a string"),
    "origin": (_STR, "a string"),
    "paper_sdr": (_NUM, "a number"),
    "notes": (_STR, "a string"),
    "stft": ((dict,), "a table"),
}


@dataclass(frozen=True)
class WeightVariant:
    """One set of weights for a model: where it comes from and how it was trained to be used."""

    name: str
    url: str = ""
    file: str = ""  # file name of the original (what a mirror folder holds)
    git_sha1: str = ""
    sha256: str = ""
    bytes: Optional[int] = None
    format: str = ""  # how the original file is stored, e.g. "state_dict", "dataparallel", "lightning"
    layout: str = ""  # which code generation's tensor layout, e.g. "ismir2020", "lightning"
    license: str = ""
    origin: str = ""
    paper_sdr: Optional[float] = None
    notes: str = ""
    stft: Mapping[str, Any] = field(default_factory=dict)  # overrides of the model's STFT settings


@dataclass(frozen=True)
class ModelEntry:
    name: str
    block: str
    description: str = ""
    target: str = "vocals"
    parameters: Optional[int] = None  # as recorded in the catalogue; tests check it against the built model
    paper_sdr: Optional[float] = None
    paper: str = ""
    notes: str = ""
    architecture: Mapping[str, Any] = field(default_factory=dict)
    block_args: Mapping[str, Any] = field(default_factory=dict)
    stft: StftSettings = field(default_factory=StftSettings)
    variants: Mapping[str, WeightVariant] = field(default_factory=dict)
    default_variant: Optional[str] = None
    source: str = BUILTIN_SOURCE  # "svs-zoo" for registry.toml, else the plugin that registered it

    @property
    def representation(self) -> str:
        return self.architecture.get("representation", "cac")

    @property
    def estimation(self) -> str:
        return self.architecture.get("estimation", "mapping" if self.representation == "cac" else "masking")

    def variant(self, name: Optional[str] = None) -> Optional[WeightVariant]:
        """The named variant, the default one for None, or None when the model has no weights."""
        name = name or self.default_variant
        if name is None:
            return None
        try:
            return self.variants[name]
        except KeyError:
            known = ", ".join(self.variants) or "none"
            raise UnknownModelError(f"model {self.name!r} has no weights variant {name!r} (variants: {known})") from None

    def stft_for(self, variant: Optional[WeightVariant]) -> StftSettings:
        """STFT settings, with the variant's overrides (weights carry the framing they were trained with)."""
        if variant is None or not variant.stft:
            return self.stft
        return replace(self.stft, **dict(variant.stft))

    def unet_config(self, block_type: BlockType, stft: Optional[StftSettings] = None) -> UNetConfig:
        stft = stft or self.stft
        arch = self.architecture
        levels = arch.get("time_down_levels")
        representation = self.representation
        return UNetConfig(
            n_blocks=arch.get("n_blocks", 7),
            in_channels=4 if representation == "cac" else 2,
            bins=stft.n_fft // 2,
            frames=stft.frames,
            channels=arch.get("channels", 24),
            sampling=arch.get("sampling", block_type.sampling),
            time_down_levels=None if levels is None else tuple(levels),
            first_activation=arch.get("first_activation", "relu"),
            output_activation=arch.get(
                "output_activation", "identity" if self.estimation == "mapping" else "sigmoid"
            ),
            block_args=dict(self.block_args),
        )


# ---------------------------------------------------------------------------------------------- parsing


class _LineIndex:
    """Maps dotted TOML paths (``models.tdc-17.stft.n_fft``) to line numbers, for one-line errors."""

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

    def table(self, path: str, values: Any, fields: dict[str, tuple[tuple[type, ...], str]]) -> dict:
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

    def model(self, name: str, values: Any, prefix: str = "models") -> ModelEntry:
        path = f"{prefix}.{name}"
        self.table(path, values, _MODEL_FIELDS)
        if "block" not in values:
            self.fail(path, "missing required field 'block'")
        arch = self.table(f"{path}.architecture", values.get("architecture", {}), _ARCH_FIELDS)
        levels = arch.get("time_down_levels")
        if levels is not None and not all(isinstance(v, int) and not isinstance(v, bool) for v in levels):
            self.fail(f"{path}.architecture.time_down_levels", f"expected a list of integers, got {levels!r}")
        if arch.get("representation", "cac") not in REPRESENTATIONS:
            self.fail(f"{path}.architecture.representation", f"must be one of {REPRESENTATIONS}")
        if arch.get("estimation", "mapping") not in ESTIMATIONS:
            self.fail(f"{path}.architecture.estimation", f"must be one of {ESTIMATIONS}")
        block_args = values.get("block_args", {})
        if not isinstance(block_args, dict):
            self.fail(f"{path}.block_args", "expected a table")
        stft = StftSettings(**self.table(f"{path}.stft", values.get("stft", {}), _STFT_FIELDS))
        variants = {}
        for variant_name, variant in values.get("variants", {}).items():
            vpath = f"{path}.variants.{variant_name}"
            self.table(vpath, variant, _VARIANT_FIELDS)
            self.table(f"{vpath}.stft", variant.get("stft", {}), _STFT_FIELDS)
            variants[variant_name] = WeightVariant(name=variant_name, **variant)
        default = values.get("default_variant")
        if default is not None and default not in variants:
            self.fail(f"{path}.default_variant", f"{default!r} is not one of its variants {sorted(variants)}")
        if default is None and variants:
            default = next(iter(variants))
        fields = {k: v for k, v in values.items() if k not in ("stft", "variants", "default_variant")}
        return ModelEntry(
            name=name, stft=stft, variants=variants, default_variant=default, source=self.source, **fields
        )


def entries_from_toml(path: str | Path, source: Optional[str] = None) -> list[ModelEntry]:
    """Parse every ``[models.NAME]`` table of a registry file (svs-zoo's or a plugin's)."""
    path = Path(path)
    label = source or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read registry: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{path}: invalid TOML: {exc}") from None
    checker = _Checker(str(path), _LineIndex(text))
    models = data.get("models", {})
    if not isinstance(models, dict):
        checker.fail("models", "expected a table of models")
    entries = [checker.model(name, values) for name, values in models.items()]
    return [replace(entry, source=label) for entry in entries]


def entry_from_mapping(values: Mapping[str, Any], source: str) -> ModelEntry:
    values = dict(values)
    name = values.pop("name", None)
    if not isinstance(name, str) or not name:
        raise RegistryError(f"{source}: a registered model needs a 'name'")
    return _Checker(source).model(name, values, prefix="model")


def builtin_registry_path() -> Path:
    """registry.toml inside the installed package, else at the root of a source checkout."""
    packaged = Path(__file__).with_name("registry.toml")
    if packaged.exists():
        return packaged
    return Path(__file__).resolve().parent.parent / "registry.toml"


# ---------------------------------------------------------------------------------------------- catalogue


@dataclass
class Catalogue:
    plugins: PluginSet
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


def _describe_plugin(plugins: PluginSet, name: str) -> str:
    status = plugins.statuses.get(name)
    if status and status.distribution:
        return f"plugin {name!r} ({status.distribution} {status.version})"
    return f"plugin {name!r}"


def build_catalogue(plugins: Optional[PluginSet] = None, registry_files: Iterable[Path] = ()) -> Catalogue:
    if plugins is None:
        plugins = PluginSet()
        plugins.load_entry_points()
    cat = Catalogue(plugins)

    def block_register(plugin_name: str):
        def register(block: Any) -> None:
            status = plugins.statuses[plugin_name]
            try:
                if not isinstance(block, BlockType):
                    raise ConfigError(f"register() expects a zoo_core.BlockType, got {type(block).__name__}")
                block.validate()
            except ConfigError as exc:
                status.error = f"malformed block: {exc}"
                return
            block = replace(block, plugin=plugin_name)
            if block.name in cat.blocks:
                other = cat.blocks[block.name].plugin
                cat.conflicts.append(
                    f"block {block.name!r} is registered by both {_describe_plugin(plugins, other)} and "
                    f"{_describe_plugin(plugins, plugin_name)}; disable one with ZOO_DISABLE_PLUGINS"
                )
                return
            cat.blocks[block.name] = block

        return register

    def add_model(entry: ModelEntry) -> None:
        if entry.name in cat.models:
            other = cat.models[entry.name].source
            cat.conflicts.append(
                f"model {entry.name!r} is defined by both {other} and {entry.source}; disable one plugin with "
                "ZOO_DISABLE_PLUGINS"
            )
            return
        cat.models[entry.name] = entry

    def model_register(plugin_name: str):
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

    plugins.call_each("register_blocks", block_register)
    for path in [builtin_registry_path(), *registry_files]:
        for entry in entries_from_toml(path, source=BUILTIN_SOURCE if path == builtin_registry_path() else None):
            add_model(entry)
    plugins.call_each("register_models", model_register)

    for name, entry in list(cat.models.items()):
        if entry.block not in cat.blocks:
            cat.hidden[name] = f"block {entry.block!r} is not provided by any loaded plugin"
            del cat.models[name]
    return cat


def extra_registry_files() -> list[Path]:
    """Registry files named in ``ZOO_REGISTRY`` (os.pathsep-separated), e.g. a lab's own catalogue."""
    return [Path(p) for p in os.environ.get("ZOO_REGISTRY", "").split(os.pathsep) if p.strip()]


@functools.lru_cache(maxsize=1)
def get_catalogue() -> Catalogue:
    return build_catalogue(registry_files=extra_registry_files())


def reset_catalogue() -> None:
    """Forget loaded plugins and models (tests, or after installing a plugin in a running process)."""
    get_catalogue.cache_clear()


# ---------------------------------------------------------------------------------------------- queries


def split_name(name: str) -> tuple[str, Optional[str]]:
    """``"tfc-tdf-large:paper"`` → ``("tfc-tdf-large", "paper")``."""
    model, _, variant = name.partition(":")
    return model, variant or None


def list_models(filter: str | Iterable[str] = "", catalogue: Optional[Catalogue] = None) -> list[str]:
    """Model names matching fnmatch pattern(s), sorted; all of them for an empty filter."""
    cat = catalogue or get_catalogue()
    cat.check()
    patterns = [filter] if isinstance(filter, str) else list(filter)
    names = sorted(cat.models)
    if not any(patterns):
        return names
    return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns if p)]


def get_entry(name: str, catalogue: Optional[Catalogue] = None) -> ModelEntry:
    cat = catalogue or get_catalogue()
    cat.check()
    model, _ = split_name(name)
    if model in cat.models:
        return cat.models[model]
    if model in cat.hidden:
        raise UnknownModelError(f"model {model!r} is unavailable: {cat.hidden[model]}")
    close = difflib.get_close_matches(model, list(cat.models), n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(close)}?" if close else "; run `zoo list` to see every model"
    raise UnknownModelError(f"unknown model {model!r}{hint}")


def resolve(name: str, catalogue: Optional[Catalogue] = None) -> tuple[ModelEntry, Optional[WeightVariant]]:
    """Entry and weights variant (the default one when the name has none) for ``name[:variant]``."""
    entry = get_entry(name, catalogue)
    return entry, entry.variant(split_name(name)[1])


def block_for(entry: ModelEntry, catalogue: Optional[Catalogue] = None) -> BlockType:
    cat = catalogue or get_catalogue()
    return cat.blocks[entry.block]


def create_model(
    name: str | ModelEntry, variant: Optional[str] = None, catalogue: Optional[Catalogue] = None
) -> SeparationModel:
    """Build a model with freshly initialised parameters (no weights are loaded).

    ``name`` may carry a variant (``tdc-17:top1``); the variant's STFT settings are used.
    """
    if isinstance(name, ModelEntry):
        entry, chosen = name, name.variant(variant)
    else:
        entry, chosen = resolve(name if variant is None else f"{split_name(name)[0]}:{variant}", catalogue)
    block = block_for(entry, catalogue)
    stft = entry.stft_for(chosen)
    return SeparationModel(
        entry.unet_config(block, stft),
        block,
        stft,
        representation=entry.representation,
        estimation=entry.estimation,
        targets=(entry.target,),
    )


def count_parameters(model) -> int:
    """Trainable parameters (BatchNorm running statistics excluded), as the paper counts them."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
