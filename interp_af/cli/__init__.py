"""Command line: thin wrappers that parse options, call the Python API and print where results went.

:func:`app` is the ``interp-af`` entry point, and the one place that decides how a run ends (see
:mod:`interp_af.cli.exits`): a user's mistake is one line and exit status 2, Ctrl-C is one line and 130, a bug
is one line pointing at a log file that holds the traceback (``--debug`` or ``INTERP_AF_DEBUG=1`` shows it).
"""

from __future__ import annotations

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
from .exits import run_app


def _add_plugin_apps() -> None:
    """Sub-apps that plugins bring (entry points ``interp_af.cli``), each a command group of its own."""
    from interp_af.plugins import cli_apps

    for name, sub in cli_apps():
        _typer_app.add_typer(sub, name=name)


_add_plugin_apps()


def app() -> None:
    """Entry point: run the Typer app and end the process the way :func:`interp_af.cli.exits.run_app` says."""
    run_app(_typer_app)
