"""``interp-af prompts``: placeholder until the setting lands (issue 2)."""

from ._app import app


@app.command()
def prompts() -> None:
    """Show rendered free/paid twins with their tokens and named positions."""
    print("not yet")
