"""`interp-af probe` (fit and score linear probes on a capture) and `interp-af probe-apply` (score a capture with
saved probes). Thin: parse, call :mod:`interp_af.analysis.probes`, print where the results went."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._app import app


@app.command("probe")
def probe(
    capture: Path = typer.Argument(..., help="capture folder written by `interp-af capture`"),
    label: str = typer.Option("in_training", "--label", "-l",
                              help="metadata column (arm, in_training, complied/decision, any column) or COLUMN=VALUE"),
    site: str = typer.Option("resid_post", help="captured site to probe"),
    position: Optional[list[str]] = typer.Option(None, "--position", "-p", help="named position(s); default: all captured"),
    where: Optional[str] = typer.Option(None, help="pandas query selecting rows, e.g. \"variant == 'default'\""),
    kinds: str = typer.Option("logreg,diffmean", help="probe kinds, comma-separated"),
    folds: int = typer.Option(5, help="k of the k-fold split by query"),
    boot: int = typer.Option(500, help="query-bootstrap replicates for intervals (0 = none)"),
    controls: bool = typer.Option(True, help="run the random-label and same-label controls"),
    transfer: Optional[list[str]] = typer.Option(None, help="generalisation condition NAME:LABEL[:WHERE] (repeat, >= 2)"),
    transfer_position: str = typer.Option("decision", help="position of the generalisation matrix"),
    cue_arms: Optional[str] = typer.Option(None, help="two arms A,B for the cue-embedding cosine (default: the capture's)"),
    out: Path = typer.Option(Path("probes"), help="output folder"),
    name: Optional[str] = typer.Option(None, help="file stem (default: LABEL-SITE)"),
    jobs: int = typer.Option(1, "--jobs", "-j", help="processes over layers (-1 = all cores)"),
    device: str = typer.Option("cpu", help="cpu (scikit-learn) or cuda (all layers in one batched torch solve)"),
    seed: int = typer.Option(0),
) -> None:
    """Fit logistic-regression and difference-of-means probes at every layer and position, with controls,
    intervals, cue-embedding cosines and (optionally) a generalisation matrix; save artifacts and figures."""
    from rich.console import Console
    from rich.table import Table

    from interp_af.analysis.probe_transfer import cue_cosines, parse_condition, transfer_capture
    from interp_af.analysis.probes import ProbeConfig, probe_capture
    from interp_af.capture.store import open_capture
    from interp_af.report.probes import auroc_figure, cosine_figure, transfer_figure, write_figure

    console = Console(stderr=True)
    cap = open_capture(capture, verify=False)
    cfg = ProbeConfig(kinds=tuple(k.strip() for k in kinds.split(",") if k.strip()), n_folds=folds, n_boot=boot,
                      controls=("random", "same_label") if controls else (), seed=seed, n_jobs=jobs,
                      device=device)
    conds = [parse_condition(t) for t in transfer or []]  # parse before the long fit: a typo fails at once
    stem = name or f"{label.replace('=', '-')}-{site}"
    result = probe_capture(cap, label, site=site, positions=position, where=where, config=cfg)
    written = [result.save(out, stem)]
    df = result.to_frame()
    df.to_csv(out / f"{stem}.scores.csv", index=False)
    written += write_figure(auroc_figure(result), out / f"{stem}-auroc")
    emb = cap.cue_embeddings()
    arms = cue_arms.split(",") if cue_arms else [a for a in dict.fromkeys(cap.meta()["arm"]) if a in emb][:2]
    if result.probes is not None and len(arms) == 2:
        cos = cue_cosines(result.probes, emb, arms)
        cos.to_csv(out / f"{stem}.cue_cosine.csv", index=False)
        written.append(out / f"{stem}.cue_cosine.csv")
        written += write_figure(cosine_figure(cos), out / f"{stem}-cue-cosine")
    if conds:
        tr = transfer_capture(cap, conds, site=site, position=transfer_position, kind=cfg.kinds[0], config=cfg)
        written.append(tr.save(out / f"{stem}.transfer.json"))
        written += write_figure(transfer_figure(tr), out / f"{stem}-transfer")

    table = Table(title=f"probe {label!r} on {cap.path.name}: best layer per position (held-out queries)")
    for col in ("position", "kind", "layer", "AUROC [95% CI]", "accuracy", "max control AUROC"):
        table.add_column(col)
    for (pos, kind), d in df[df.control == "none"].groupby(["position", "kind"], sort=False):
        b = d.loc[d.auroc.idxmax()]
        ctl = df[(df.position == pos) & (df.kind == kind) & (df.control != "none")].auroc
        table.add_row(pos, kind, str(int(b.layer)), f"{b.auroc:.3f} [{b.auroc_lo:.3f}, {b.auroc_hi:.3f}]",
                      f"{b.accuracy:.3f}", f"{ctl.max():.3f}" if len(ctl) else "-")
    console.print(table)
    for line in result.notes:
        console.print(f"note: {line}")
    for line in result.leakage:
        console.print(f"[bold red]LEAKAGE[/]: {line}")
    for f in written:
        print(f)


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
    from interp_af.capture.store import open_capture

    ps = ProbeSet.load(probes)
    cap = open_capture(capture, verify=False)
    scores = ps.score(cap, strict=strict)
    meta = cap.meta()[["row", "query_id", "arm", "variant"]]
    cols = {f"{e.kind}@{e.site}@{e.position}@L{e.layer}": scores[:, k].numpy() for k, e in enumerate(ps.entries)}
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.concat([meta, pd.DataFrame(cols)], axis=1).to_csv(out, index=False)
    print(out)
