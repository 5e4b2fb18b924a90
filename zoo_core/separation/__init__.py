"""Separation, by job: `engine` (streaming overlap-add over any model, `SeparationSettings`), `tensors` (the
`separate` tensor API) and `files` (`separate_file` and the naming of its outputs)."""

from .engine import DEFAULT_BATCH_SIZE, METHODS, Blocks, BlockSeparator, OverlapAdd, SeparationSettings, separate_blocks
from .files import FileResult, choose_stems, model_folder, model_label, output_paths, separate_file
from .tensors import separate

__all__ = [
    "BlockSeparator",
    "Blocks",
    "DEFAULT_BATCH_SIZE",
    "FileResult",
    "METHODS",
    "OverlapAdd",
    "SeparationSettings",
    "choose_stems",
    "model_folder",
    "model_label",
    "output_paths",
    "separate",
    "separate_blocks",
    "separate_file",
]
