"""``python -m interp_af.cli ...``: the same entry point as the ``interp-af`` console script."""

from interp_af.cli import app

app()
