"""The ``zoo`` command line.

Each command lives in its own module of this package and is imported only when it runs, so ``zoo list`` does
not pay for the imports of ``zoo eval``. Errors the user can fix (`ZooError`, and click's usage errors) print
one ``error:`` line and exit non-zero; anything else is a bug and keeps its traceback. SIGTERM unwinds like
Ctrl-C, so half-written outputs are removed either way.
"""

from __future__ import annotations

import importlib
import sys

import click

from ..errors import ZooError

# command name -> "module:attribute" inside zoo_core.cli
COMMANDS = {
    "list": "listing:list_command",
    "info": "listing:info_command",
    "plugins": "listing:plugins_command",
    "pull": "weights:pull_command",
    "import": "weights:import_command",
    "separate": "separate:separate_command",
    "stream": "stream:stream_command",
    "eval": "evaluate:eval_command",
    "ensemble": "ensemble:ensemble_group",
    "demo": "demo:demo_command",
    "export": "export:export_command",
    "inspect": "export:inspect_command",
    "train": "train:train_command",
    "serve": "serve:serve_command",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if self.get_command(ctx, name) is not None]

    def get_command(self, ctx: click.Context, name: str):
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        return getattr(importlib.import_module(f"{__name__}.{module_name}"), attribute)

    def main(self, *args, **kwargs):
        return run_guarded(lambda: super(LazyGroup, self).main(*args, standalone_mode=False, **kwargs))


def run_guarded(call):
    """Run a click entry point the way every zoo command runs: SIGTERM unwinds, and user errors, Ctrl-C and
    SIGTERM become one line on stderr and an exit code instead of a traceback."""
    from .runner import Terminated, handle_sigterm

    handle_sigterm()
    try:
        return call()
    except click.exceptions.Exit as exc:  # --help, --version
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx is not None else "zoo"
        click.echo(f"error: {exc.format_message()} (see '{command} --help')", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except ZooError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Terminated:
        click.echo("terminated", err=True)
        sys.exit(143)


@click.group(name="zoo", cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="svs-zoo", prog_name="zoo")
def main() -> None:
    """svs-zoo: a plugin-style zoo of music source separation models: the U-Nets of the ISMIR 2020 paper with the
    authors' weights, the MDX23C models, any network family a plugin adds; TorchScript, AOTInductor, ONNX.

    List the models, pull their weights, separate and evaluate songs (also in a web page: zoo serve), export
    for C++ deployment, train.
    """
    from ..allocator import tune_allocator

    tune_allocator()  # keep freed activations in the process (zoo_core/allocator.py; docs/performance.md)


if __name__ == "__main__":  # pragma: no cover
    main()
