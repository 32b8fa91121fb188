"""``interp-af gap``: the compliance gap (free vs paid arm) of the main variant and its contrasts, with paired
intervals.

The same function as the study's ``gap`` stage (:func:`interp_af.stages.gap.gap`) with the same options
(``[gap]`` in a study TOML). Writes ``<variant>/<kind>/gap.json`` per variant and request kind plus the gap and
contrast figures into ``--out``. Without ``--model`` it measures the default target (``interp-af targets``).
"""

from __future__ import annotations

from pathlib import Path

import typer

from interp_af.stages.gap import GapConfig
from interp_af.targets.config import ModelConfig, SettingConfig

from ._app import app
from .options import MODEL, with_configs


@app.command()
@with_configs(model=(ModelConfig, MODEL), setting=SettingConfig, gap=GapConfig)
def gap(out: Path = typer.Option(Path("results/gap"), "--out", help="Output folder."),
        model: ModelConfig = None, setting: SettingConfig = None, gap: GapConfig = None) -> None:  # type: ignore[assignment]
    """Measure compliance per arm and the gap, with paired bootstrap intervals (JSON + HTML figures)."""
    from interp_af.stages.gap import gap as run_gap
    from interp_af.stages.gap import report, summarize

    from . import common

    common.check_out(out)
    t = common.target(model, setting)
    common.preflight(t)
    common.claim_out(out, what="gap")
    common.loading(t)
    study = run_gap(t, gap)
    study.save(out)
    figs = common.write_figures(report(study, summarize(study)), out)
    for v, kinds in study.results.items():
        if "harmful" in kinds:
            common.console.print(f"{v}: {kinds['harmful']}", highlight=False, markup=False)
    common.done([out / "gap_study.json", *figs], t)
