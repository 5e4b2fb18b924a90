"""`python -m zoo_core.cli` is the `zoo` command. Started by torchrun (``torchrun ... -m zoo_core.cli separate
INPUTS``), `zoo separate` shares its inputs between the ranks (``--distributed``) without being told."""

import os
import sys

from . import main

arguments = sys.argv[1:]
if "WORLD_SIZE" in os.environ and arguments[:1] == ["separate"] and "--distributed" not in arguments:
    arguments.append("--distributed")
main(arguments, prog_name="zoo")
