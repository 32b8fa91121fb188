"""``interp-af probe CAPTURE`` (fit and score linear probes on a capture) and ``interp-af probe-apply`` (score a
capture with saved probes). ``probe`` is the study's ``probes`` stage (:func:`interp_af.stages.probes.probe`)
with the same options (``[probes]``)."""

from __future__ import annotations

from pathlib import Path

import typer

from interp_af.stages.probes import ProbesConfig

from ._app import app
from .options import with_configs


@app.command("probe")
@with_configs(probes=(ProbesConfig, {"rename": {"labels": "label", "positions": "position"}}))
def probe(capture: Path = typer.Argument(..., help="capture folder written by `interp-af capture` or `interp-af run`"),
          out: Path = typer.Option(Path("probes"), "--out", help="output folder"),
          probes: ProbesConfig = None) -> None:  # type: ignore[assignment]
    """Fit logistic-regression and difference-of-means probes at every layer and position, with controls,
    intervals, cue-embedding cosines and the policy transfer matrix; save artifacts and figures."""
    from rich.table import Table

    from interp_af.stages.probes import probe as run_probe
    from interp_af.stages.probes import report, summarize

    from . import common

    common.check_out(out)
    study = run_probe(capture, probes)
    common.claim_out(out, what="probe")
    study.save(out)
    df = study.result.to_frame()
    df.to_csv(out / "probes.scores.csv", index=False)
    figs = common.write_figures(report(study, summarize(study)), out)
    table = Table(title=f"probes on {Path(capture).name}: best layer per label and position (held-out queries)")
    for col in ("label", "position", "kind", "layer", "AUROC [95% CI]", "accuracy", "max control AUROC"):
        table.add_column(col)
    if len(df):
        for (label, pos, kind), d in df[df.control == "none"].groupby(["label", "position", "kind"], sort=False):
            b = d.loc[d.auroc.idxmax()]
            ctl = df[(df.label == label) & (df.position == pos) & (df.kind == kind) & (df.control != "none")].auroc
            table.add_row(str(label), pos, kind, str(int(b.layer)), f"{b.auroc:.3f} [{b.auroc_lo:.3f}, {b.auroc_hi:.3f}]",
                          f"{b.accuracy:.3f}", f"{ctl.max():.3f}" if len(ctl) else "-")
    common.console.print(table)
    for line in study.result.notes:
        common.console.print(f"note: {line}", highlight=False, markup=False)
    for line in study.result.leakage:
        common.console.print(f"[bold red]LEAKAGE[/]: {line}", highlight=False)
    common.done([out / "probes.scores.json", out / "probes.scores.csv", *figs])


@app.command("probe-apply")
def probe_apply(
    probes: Path = typer.Argument(..., help="probe file written by `interp-af probe` (.json or its stem)"),
    capture: Path = typer.Argument(..., help="capture folder to score"),
    out: Path = typer.Option(Path("probe_scores.csv"), help="CSV: one row per prompt, one column per probe"),
    strict: bool = typer.Option(True, help="refuse a capture of another model (name, adapter, weights)"),
) -> None:
    """Score a capture with saved probes (refuses another model or width)."""
    import pandas as pd

    from interp_af.analysis.probe_artifact import ProbeSet
    from interp_af.acts.store import open_capture

    from . import common

    common.check_out(out, kind="file")
    ps = ProbeSet.load(probes)
    cap = open_capture(capture)
    scores = ps.score(cap, strict=strict)
    meta = cap.meta()[["row", "query_id", "arm", "variant"]]
    cols = {f"{e.kind}@{e.site}@{e.position}@L{e.layer}": scores[:, k].numpy() for k, e in enumerate(ps.entries)}
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.concat([meta, pd.DataFrame(cols)], axis=1).to_csv(out, index=False)
    print(out)
