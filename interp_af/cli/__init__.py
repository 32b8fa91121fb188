"""Command line: thin wrappers that parse options, call the Python API and print where results went."""

import sys

from interp_af.errors import InterpAFError

from ._app import app as _typer_app

# Each module registers its subcommands on the shared app when imported.
from . import capture as _capture  # noqa: E402,F401
from . import gap as _gap  # noqa: E402,F401
from . import patch as _patch  # noqa: E402,F401
from . import probe as _probe  # noqa: E402,F401
from . import prompts as _prompts  # noqa: E402,F401
from . import run as _run  # noqa: E402,F401
from . import sae as _sae  # noqa: E402,F401
from . import targets as _targets  # noqa: E402,F401
from . import verdicts as _verdicts  # noqa: E402,F401


def _add_plugin_apps() -> None:
    """Sub-apps that plugins bring (entry points ``interp_af.cli``), each a command group of its own."""
    from interp_af.plugins import cli_apps

    for name, sub in cli_apps():
        _typer_app.add_typer(sub, name=name)


_add_plugin_apps()


def app() -> None:
    """Entry point: run the Typer app; user errors become one line on stderr and exit status 2."""
    try:
        _typer_app(standalone_mode=False)
    except InterpAFError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except SystemExit:
        raise
    except Exception as err:  # click's usage errors arrive here in non-standalone mode
        import click

        if isinstance(err, click.exceptions.ClickException):
            err.show()
            raise SystemExit(err.exit_code) from None
        if isinstance(err, click.exceptions.Abort):
            print("aborted", file=sys.stderr)
            raise SystemExit(130) from None
        raise
