"""svs-zoo core: block interface, U-Net skeleton, spectrogram framing, registry, plugins and CLI.

Quick start::

    import zoo_core
    zoo_core.list_models("tfc*")
    model = zoo_core.create_model("tfc-tdf-large")      # initialised parameters
    model = zoo_core.load_model("tdc-17:top1")          # with the authors' weights (pulled when needed)
"""

from .blocks import BlockContext, BlockType
from .errors import ZooError
from .hookspecs import hookimpl
from .model import SeparationModel, StftSettings
from .registry import count_parameters, create_model, get_entry, list_models, resolve

__version__ = "0.1.0"

from .weights import load_model  # noqa: E402  (the weights package reads __version__)

__all__ = [
    "BlockContext",
    "BlockType",
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
