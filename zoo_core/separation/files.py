"""Separating files: `separate_file`, and the naming of what it writes (`model_folder`, `output_paths`)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from ..audio import AtomicWriter, check_input_path, open_audio, subtype_for, track_name
from ..errors import ZooError
from ..stems import available_stems, output_stems
from .engine import Progress, SeparationSettings, separate_blocks


@dataclass
class FileResult:
    """What `separate_file` wrote."""

    input: Path
    track: str
    outputs: dict[str, Path]
    sample_rate: int
    channels: int
    frames: int
    seconds: float
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "input": str(self.input),
            "track": self.track,
            "outputs": {stem: str(path) for stem, path in self.outputs.items()},
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "frames": self.frames,
            "seconds": round(self.seconds, 3),
            "warnings": self.warnings,
        }


def model_folder(model) -> str:
    """The output folder of a model: ``<model>_<variant>`` of the weights it holds (``NAME_VARIANT``), its
    registry name for initialised parameters, ``model`` for anything else; an ensemble's or an augmented model's
    own (`zoo_core.ensemble.names.folder_name`). One rule for every command."""
    if getattr(model, "zoo_folder", None):
        return model.zoo_folder
    return model_label(model).replace(":", "_")  # a colon is not portable in a file name


def model_label(model) -> str:
    """``<model>:<variant>`` of the weights a model holds (``NAME:VARIANT``), as the manifest records it; an
    ensemble's or an augmented model's name (``avg-wave(A:top1, A:top2)``, ``tta(A:top1)``)."""
    if getattr(model, "zoo_label", None):
        return model.zoo_label
    if model.provenance is not None:
        return model.provenance.label
    return model.entry_name or "model"


def choose_stems(model, stems: Optional[Sequence[str]]) -> list[str]:
    """The stems to write: the default ones (`output_stems`), or those named, in the model's order, of every
    stem it can give (`available_stems`: also the accompaniment of a multi-stem model); unknown names are an
    error."""
    available = available_stems(model.stems)
    if not stems:
        return output_stems(model.stems)
    unknown = [stem for stem in stems if stem not in available]
    if unknown:
        raise ZooError(f"no stem {unknown[0]!r} in this model (it gives {', '.join(available)})")
    return [stem for stem in available if stem in stems]


def output_paths(out_dir: Path, model, path: Path, stems: Sequence[str], format: str = "wav") -> dict[str, Path]:
    """``<out>/<model_folder>/<track>/<stem>.<format>``."""
    folder = Path(out_dir) / model_folder(model) / track_name(Path(path))
    return {stem: folder / f"{stem}.{format}" for stem in stems}


def separate_file(
    model,
    path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    options: SeparationSettings = SeparationSettings(),
    stems: Optional[Sequence[str]] = None,
    format: str = "wav",
    bits: Optional[str] = None,
    force: bool = False,
    on_start: Optional[Callable[[int], None]] = None,
    progress: Optional[Progress] = None,
) -> FileResult:
    """Separate one file into ``<out_dir>/<model_folder>/<track>/<stem>.<format>``, one file per stem (all of
    them, or those named in ``stems``).

    The file is decoded, resampled, separated and written block by block (flat memory for any length); the
    outputs have the input's rate, channel count and length, and appear only once complete (temporary names,
    then a rename). Existing outputs are an error unless ``force``. ``on_start`` receives the declared number
    of frames and the sample rate, ``progress`` the frames consumed so far, block by block. Raises `ZooError`
    for bad input.
    """
    path = Path(path)
    subtype = subtype_for(format, bits)
    options.validate()
    chosen = choose_stems(model, stems)
    check_input_path(path)
    outputs = output_paths(Path(out_dir), model, path, chosen, format)
    existing = [str(p) for p in outputs.values() if p.exists()]
    if existing and not force:
        raise ZooError(f"{existing[0]} exists; pass --force to overwrite")
    started = time.perf_counter()
    reader = open_audio(path)
    if on_start is not None:
        on_start(reader.frames, reader.sample_rate)
    writers: dict[str, AtomicWriter] = {}
    frames = 0
    try:
        for stem in chosen:
            writers[stem] = AtomicWriter(outputs[stem], reader.sample_rate, reader.channels, format, subtype)
        for blocks in separate_blocks(model, reader.blocks(), reader.sample_rate, reader.channels, options, progress):
            for stem, writer in writers.items():
                writer.write(blocks[stem])
            frames += next(iter(blocks.values())).shape[0]
        committed: list[Path] = []
        try:
            for writer in writers.values():
                writer.commit()
                committed.append(writer.path)
        except BaseException:  # all stems or none: a kill between two renames must not leave half a set
            for done in committed:
                done.unlink(missing_ok=True)
            raise
        warnings = [
            f"{writer.path}: {writer.clipped} samples beyond ±1 were clipped by the {bits or '24'}-bit format; "
            "use --bits float (WAV) to keep them"
            for writer in writers.values()
            if writer.clipped
        ]
    except BaseException as exc:
        for writer in reversed(list(writers.values())):  # the first one made the folders: it goes last
            writer.discard()
        if isinstance(exc, OSError):  # a full disk, a folder we may not write to
            raise ZooError(f"{path}: cannot write the outputs ({exc})", exit_code=1) from None
        raise
    return FileResult(
        path, track_name(path), outputs, reader.sample_rate, reader.channels, frames, time.perf_counter() - started,
        warnings,
    )
