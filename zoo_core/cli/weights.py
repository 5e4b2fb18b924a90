"""`zoo pull` and `zoo import`: put pretrained weights into the cache."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from ..registry import get_entry, split_name
from ..weights import import_checkpoint, pull


@click.command("pull", short_help="Download, verify and cache released weights.")
@click.argument("names", nargs=-1, required=True, metavar="NAME[:VARIANT]...")
@click.option("--all", "all_variants", is_flag=True, help="Pull every released variant of each model.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def pull_command(names: tuple[str, ...], all_variants: bool, quiet: bool) -> None:
    """Download, verify and convert released weights into the cache; print where they are.

    Without a variant the model's default one is pulled. ZOO_WEIGHTS_MIRROR=DIR takes the original files
    from a local folder instead of the network.
    """
    for name in names:
        if all_variants:
            entry = get_entry(name)
            targets = [f"{entry.name}:{variant}" for variant in entry.variants] or [name]
        else:
            targets = [name]
        for target in targets:
            click.echo(pull(target, progress=not quiet))


@click.command("import", short_help="Import a local checkpoint into the cache.")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--model", "model", required=True, metavar="NAME", help="The registry model the checkpoint is for.")
@click.option(
    "--variant",
    metavar="NAME",
    help="Variant name in the cache. Default: the released variant whose hashes match the file, else 'imported'.",
)
@click.option("--stft", metavar="VARIANT|KEY=VALUE,...",
              help="The STFT the weights were trained with, when the file does not say: a released variant's name "
                   "(--stft epoch2007) or settings over the model's defaults (--stft hop_length=1024,center=true).")
def import_command(path: Path, model: str, variant: Optional[str], stft: Optional[str]) -> None:
    """Convert a local checkpoint (plain, DataParallel, Lightning .ckpt, svs-zoo's own, an architecture's
    original naming) into the cache, also inside a checkpoint dict (state_dict, model_state_dict, state), with
    module./model. on every key, or as safetensors.

    The file is read with torch.load(weights_only=True): one that needs arbitrary unpickling is refused. The
    STFT settings that go with the weights come from a released variant whose hashes match, --stft, the file's
    own record, the released variants of the same layout, or the model's only framing, in that order;
    otherwise the import is refused.
    """
    import json

    from ..weights.store import read_metadata

    target = import_checkpoint(path, model, variant, stft)
    metadata = read_metadata(target)
    settings = json.loads(metadata["stft"])
    click.echo(f"imported {split_name(model)[0]}:{target.stem} -> {target}")
    click.echo(f"STFT n_fft {settings['n_fft']}, hop {settings['hop_length']}, center={settings['center']} "
               f"(from {metadata['stft_source']})")
