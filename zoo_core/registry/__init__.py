"""The catalogue of named models: what plugins register (svs-zoo's built-in plugins register the models of
its ``registry.toml``) plus the registry files named in ``ZOO_REGISTRY``.

- `schema`: `ModelEntry` and `WeightVariant`, what an entry holds;
- `parsing`: registry files → entries, with file/line/field errors;
- `catalogue`: plugins' architectures, blocks and models plus the registry files, assembled once;
- `queries`: `list_models`, `get_entry`, `resolve`, `split_name`;
- `factory`: `build_model` (initialised parameters; `zoo_core.load` is the public way) and `count_parameters`.
"""

from .catalogue import ModelCatalogue, build_catalogue, extra_registry_files, get_catalogue, reset_catalogue
from .factory import build_model, count_parameters
from .parsing import builtin_entries, entries_from_toml, entry_from_mapping
from .queries import architecture_for, block_for, get_entry, list_models, resolve, split_name
from .schema import ModelEntry, WeightVariant

__all__ = [
    "ModelCatalogue",
    "ModelEntry",
    "WeightVariant",
    "architecture_for",
    "block_for",
    "build_catalogue",
    "build_model",
    "builtin_entries",
    "count_parameters",
    "entries_from_toml",
    "entry_from_mapping",
    "extra_registry_files",
    "get_catalogue",
    "get_entry",
    "list_models",
    "reset_catalogue",
    "resolve",
    "split_name",
]
