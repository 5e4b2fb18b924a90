"""``python -m zoo_core.train`` / ``torchrun --nproc_per_node N -m zoo_core.train MODEL --musdb ROOT -o DIR``."""

import sys

import click

from ..cli.train import train_command
from ..errors import ZooError

try:
    train_command(prog_name="python -m zoo_core.train")
except ZooError as exc:
    click.echo(f"error: {exc}", err=True)
    sys.exit(exc.exit_code)
