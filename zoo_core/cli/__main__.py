"""`python -m zoo_core.cli` is the `zoo` command."""

from . import main

main(prog_name="zoo")
