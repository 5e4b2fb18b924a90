"""Pretrained weights: released checkpoints, verified, converted to safetensors, cached.

`pull` fetches a released variant (from ``ZOO_WEIGHTS_MIRROR`` or the network), `import_checkpoint` converts
a local original file; both write ``$ZOO_HOME/weights/<model>/<variant>.safetensors``, which `zoo_core.load`
reads.
"""

from .cache import cached_path
from .install import import_checkpoint, pull, weights_status

__all__ = ["cached_path", "import_checkpoint", "pull", "weights_status"]
