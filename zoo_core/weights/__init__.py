"""Pretrained weights: the authors' original checkpoints, verified, converted to safetensors, cached.

    from zoo_core.weights import load_model
    model = load_model("tdc-17:top1")          # pulls into the cache first if needed

`pull` fetches a released variant (from ``ZOO_WEIGHTS_MIRROR`` or the network), `import_checkpoint` converts
a local original file; both write ``$ZOO_HOME/weights/<model>/<variant>.safetensors``.
"""

from .cache import cached_path
from .install import import_checkpoint, pull, weights_status
from .load import load_model

__all__ = ["cached_path", "import_checkpoint", "load_model", "pull", "weights_status"]
