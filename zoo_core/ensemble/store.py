"""Named ensembles: ``[ensembles.NAME]`` tables that `zoo ensemble fit` writes to ``$ZOO_HOME/ensembles.toml``,
read automatically, together with such tables in the registry files of ``ZOO_REGISTRY``. `zoo list` shows
them and ``zoo separate -m NAME`` (eval, stream) runs them::

    [ensembles.my-ensemble]
    rule = "avg-wave"
    members = ["A:one", "A:three"]
    weights = { vocals = [0.35, 0.65], accompaniment = [0.0, 1.0] }   # per stem, one per member
    description = "fitted on 1 track: vocals +0.04 dB over A:three ..."
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Optional

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..errors import ZooError
from .names import is_composite
from .rules import check_rule

FILE_NAME = "ensembles.toml"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


def ensembles_file() -> Path:
    from ..weights.cache import zoo_home

    return zoo_home() / FILE_NAME


def _files() -> list[Path]:
    from ..registry.catalogue import extra_registry_files

    return [ensembles_file(), *extra_registry_files()]


def named_ensembles() -> dict[str, dict[str, Any]]:
    """Every named ensemble: name → its table (with ``file``, where it was read)."""
    found: dict[str, dict[str, Any]] = {}
    for path in _files():
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ZooError(f"{path}: cannot read the ensembles: {exc}") from None
        tables = data.get("ensembles", {})
        if not isinstance(tables, dict):
            raise ZooError(f"{path}: [ensembles] must be a table of ensembles")
        for name, table in tables.items():
            found.setdefault(name, _checked(path, name, table))
    return found


def _checked(path: Path, name: str, table: Any) -> dict[str, Any]:
    where = f"{path}: ensembles.{name}"
    if not isinstance(table, dict):
        raise ZooError(f"{where}: expected a table")
    members = table.get("members")
    if not isinstance(members, list) or len(members) < 2 or not all(isinstance(m, str) for m in members):
        raise ZooError(f"{where}.members: expected a list of at least two model names")
    try:
        check_rule(str(table.get("rule", "avg-wave")))
    except ZooError as exc:
        raise ZooError(f"{where}.rule: {exc}") from None
    weights = table.get("weights")
    if weights is not None and not isinstance(weights, (list, dict)):
        raise ZooError(f"{where}.weights: expected a list (one per member) or a table per stem")
    return {**table, "file": str(path)}


def resolve_composite(name: str) -> Optional[str]:
    """``name`` when it names an ensemble (composite or named) or an augmented model, else None (a plain model)."""
    if is_composite(name):
        return name
    if ":" in name:
        return None
    from ..registry import get_catalogue

    if name in get_catalogue().models:  # a model of the registry wins over a hand-written ensemble of its name
        return None
    return name if name in named_ensembles() else None


def check_new_name(name: str) -> str:
    from ..registry import get_catalogue

    if not _NAME.match(name):
        raise ZooError(f"invalid ensemble name {name!r}: use lower-case letters, digits, '-', '_', '.'")
    if name in get_catalogue().models:
        raise ZooError(f"{name!r} is a model of the registry; give the ensemble another --name")
    return name


def save_ensemble(name: str, table: dict[str, Any], force: bool = False) -> Path:
    """Write ``[ensembles.NAME]`` into ``$ZOO_HOME/ensembles.toml`` (kept: the other entries and comments)."""
    import tomlkit

    from ..files import make_folders, write_text_atomically

    path = ensembles_file()
    document = tomlkit.parse(path.read_text(encoding="utf-8")) if path.is_file() else tomlkit.document()
    if not path.is_file():
        document.add(tomlkit.comment("Named ensembles (zoo ensemble fit); zoo separate -m NAME runs one."))
    tables = document.setdefault("ensembles", tomlkit.table(is_super_table=True))
    if name in tables and not force:
        raise ZooError(f"an ensemble {name!r} exists in {path}; pass --force to replace it")
    entry = tomlkit.table()
    for key, value in table.items():
        if isinstance(value, dict):
            inline = tomlkit.inline_table()
            inline.update(value)
            entry.add(key, inline)
        else:
            entry.add(key, value)
    tables[name] = entry
    make_folders(path.parent)
    write_text_atomically(path, tomlkit.dumps(document))
    return path
