"""`zoo pull` and `zoo import`: put pretrained weights into the cache."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from ..registry import get_entry, split_name
from ..weights import import_checkpoint, pull


@click.command("pull")
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


@click.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--model", "model", required=True, metavar="NAME", help="The registry model the checkpoint is for.")
@click.option(
    "--variant",
    metavar="NAME",
    help="Variant name in the cache. Default: the released variant whose hashes match the file, else 'imported'.",
)
def import_command(path: Path, model: str, variant: Optional[str]) -> None:
    """Convert a local original checkpoint (plain, DataParallel or Lightning .ckpt) into the cache.

    The file is read with torch.load(weights_only=True): one that needs arbitrary unpickling is refused.
    """
    target = import_checkpoint(path, model, variant)
    click.echo(f"imported {split_name(model)[0]}:{target.stem} -> {target}")
