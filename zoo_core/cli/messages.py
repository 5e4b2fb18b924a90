"""Warnings on stderr, one format for every command (errors are `zoo_core.cli.run_guarded`'s)."""

import click


def warn(message: str) -> None:
    """A warning line on stderr, the same format everywhere."""
    click.echo(f"warning: {message}", err=True)
