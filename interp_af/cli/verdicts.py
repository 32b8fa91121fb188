"""``interp-af verdicts RUN``: a finished run's verdict table, re-read against other thresholds.

The thresholds are the study's ``[verdicts]`` table (:class:`interp_af.report.verdicts.VerdictConfig`), so a
flag here, a TOML key and an API argument are one option. No stage reruns and nothing is written: the table
is rebuilt from the stages' summaries in the run folder (``interp_af.pipeline.study.verdicts_of``).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from interp_af.report.verdicts import VerdictConfig

from ._app import app
from .options import with_configs


@app.command()
@with_configs(verdicts=VerdictConfig)
def verdicts(run: Path = typer.Argument(..., help="a run folder `interp-af run` wrote"),
             as_json: bool = typer.Option(False, "--json", help="print the rows as JSON (as summary.json holds them)"),
             verdicts: VerdictConfig = None) -> None:  # type: ignore[assignment]
    """Print the verdict table of RUN: explanation, verdict, what was measured and the margin."""
    from rich.console import Console
    from rich.table import Table

    from interp_af.pipeline.study import verdicts_of

    rows = verdicts_of(run, verdicts)
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    table = Table(title=f"verdicts: {run}", show_lines=True)
    for col in ("row", "verdict", "measured", "margin"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["row"], r["verdict"], r["measured"], r["margin"])
    Console(width=160).print(table)
