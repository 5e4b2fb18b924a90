"""The catalogue of named models: svs-zoo's ``registry.toml`` plus what plugins register.

- `schema`: `ModelEntry` and `WeightVariant`, what an entry holds;
- `parsing`: registry files → entries, with file/line/field errors;
- `catalogue`: plugins' architectures, blocks and models plus the registry files, assembled once;
- `queries`: `list_models`, `get_entry`, `resolve`, `split_name`;
- `factory`: `create_model` (initialised parameters) and `count_parameters`.
"""

from .catalogue import Catalogue, build_catalogue, builtin_registry_path, extra_registry_files, get_catalogue, reset_catalogue
from .factory import count_parameters, create_model
from .parsing import entries_from_toml, entry_from_mapping
from .queries import architecture_for, block_for, get_entry, list_models, resolve, split_name
from .schema import BUILTIN_SOURCE, ModelEntry, WeightVariant

__all__ = [
    "BUILTIN_SOURCE",
    "Catalogue",
    "ModelEntry",
    "WeightVariant",
    "architecture_for",
    "block_for",
    "build_catalogue",
    "builtin_registry_path",
    "count_parameters",
    "create_model",
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
