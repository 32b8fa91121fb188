"""``interp-af run``: the whole study from one TOML config (default: the default target's study)."""

from pathlib import Path
from typing import Optional

import typer

from ._app import app


@app.command()
def run(
    config: Optional[Path] = typer.Argument(None, help="study TOML (see experiments/); default: the default study"),
    out: Optional[Path] = typer.Option(None, "--out", help="run folder (default: runs/<config name>)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bars"),
    single_file: bool = typer.Option(False, "--single-file", help="report.html with plotly.js inside it (one file "
                                     "to share, ~5 MB) instead of sharing the run folder's plotly.min.js"),
    allow_foreign: bool = typer.Option(False, "--allow-foreign", help="write into a --out folder that holds other "
                                       "files, beside them (they are never deleted or overwritten)"),
) -> None:
    """Measure the gap, capture, probe, patch, steer and read SAE features; write report.html and summary.json.

    Stages whose inputs have not changed since a previous run into the same folder are reused; a changed config
    recomputes exactly the stages that read the change."""
    import time

    from rich.console import Console
    from rich.table import Table

    from interp_af.pipeline.config import load_config
    from interp_af.pipeline.study import run_study

    console = Console(stderr=True)
    from interp_af.pipeline.preflight import check_study_inputs

    cfg = load_config(config)
    check_study_inputs(cfg, config)
    run_dir = out or Path("runs") / cfg.name
    t0 = time.perf_counter()

    def on_stage(name: str, i: int, n: int) -> None:
        if not quiet:
            console.rule(f"[bold]stage {i + 1}/{n}: {name}")

    result = run_study(cfg, run_dir, on_stage=on_stage, progress=not quiet, inline=single_file,
                       allow_foreign=allow_foreign,
                       config_file=str(config) if config else "(default study)")
    table = Table(title=f"interp-af run: {cfg.name}")
    for col in ("stage", "seconds", "reused"):
        table.add_column(col)
    for r in result.records:
        table.add_row(r.stage, f"{r.seconds:.1f}", "yes" if r.reused else "no")
    console.print(table)
    console.print(f"total {time.perf_counter() - t0:.1f} s")
    print(f"report: {result.report}")
    print(f"summary: {run_dir / 'summary.json'}")
