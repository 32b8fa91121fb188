"""The ``interp-af`` Typer app. Subcommands live one per module in this package and import heavy
libraries inside their functions, so that ``interp-af --help`` answers in well under a second."""

from typing import Optional

import typer

app = typer.Typer(
    name="interp-af",
    help="Mechanistic interpretability of alignment faking (no-CoT compliance gap).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from interp_af import __version__

        typer.echo(f"interp-af {__version__}")
        raise typer.Exit()


def _debug(value: bool) -> None:
    if value:
        from .exits import set_debug

        set_debug(True)


@app.callback()
def _root(version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True,
                                                 help="Print the version and exit."),
          debug: bool = typer.Option(False, "--debug", callback=_debug, is_eager=True,
                                     help="Show the full traceback of an error (also INTERP_AF_DEBUG=1).")) -> None:
    """interp_af: measure the compliance gap, capture activations, probe, patch, steer, read SAE features."""
