"""The ``interp-af`` Typer app. Subcommands live one per module in this package and import heavy
libraries inside their functions, so that ``interp-af --help`` answers in well under a second."""

import typer

app = typer.Typer(
    name="interp-af",
    help="Mechanistic interpretability of alignment faking (no-CoT compliance gap).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """interp_af: measure the compliance gap, capture activations, probe, patch, steer, read SAE features."""
