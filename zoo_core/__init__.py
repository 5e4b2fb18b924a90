"""svs-zoo core: block and architecture interfaces, spectrogram framing, registry, plugins and CLI.

Quick start::

    import zoo_core
    zoo_core.list_models("tfc*")
    model = zoo_core.create_model("tfc-tdf-large")      # initialised parameters
    model = zoo_core.load_model("tdc-17:top1")          # with the authors' weights (pulled when needed)
"""

__version__ = "0.1.0"  # the one place the version is written (pyproject.toml reads it)

from .architectures import Architecture, NetworkContext  # noqa: E402
from .blocks import BlockContext, BlockType  # noqa: E402
from .errors import ConfigError, ZooError  # noqa: E402
from .hookspecs import hookimpl  # noqa: E402
from .model import SeparationModel, StftSettings  # noqa: E402
from .registry import count_parameters, create_model, get_entry, list_models, resolve  # noqa: E402
from .weights import load_model  # noqa: E402

__all__ = [
    "Architecture",
    "BlockContext",
    "BlockType",
    "ConfigError",
    "NetworkContext",
    "SeparationModel",
    "StftSettings",
    "ZooError",
    "__version__",
    "count_parameters",
    "create_model",
    "get_entry",
    "hookimpl",
    "list_models",
    "load_model",
    "resolve",
]
