"""The stages of ``interp-af run``: thin glue from a :class:`~interp_af.config.StudyConfig` to the analysis APIs.

Each stage function takes a :class:`~interp_af.pipeline.runner.RunContext`, writes its results and figures into
its own folder, and returns a small JSON-able summary (what ``summary.json`` and the report read). Stages never
reach into each other's Python objects, only into each other's folders and summaries, so any stage can be
re-run alone. The model handle and the rendered twins are cached in ``ctx.cache`` so one run loads the model
once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from interp_af.errors import InterpAFError
from interp_af.pipeline.runner import RunContext


# ------------------------------------------------------------------------------------------ shared inputs
def is_organism(ctx: RunContext) -> bool:
    return ctx.config.model.path == "organism"


def handle(ctx: RunContext) -> Any:
    """The model handle of ``[model]`` (loaded once per run)."""
    if "handle" not in ctx.cache:
        from interp_af.models.handle import load_model

        m = ctx.config.model
        ctx.cache["handle"] = load_model(m.path, backend=m.backend, adapter=m.adapter or None, dtype=m.dtype,
                                         device=m.device, device_map=m.device_map or None, remote=m.remote,
                                         trust_remote_code=m.trust_remote_code)
    return ctx.cache["handle"]


def queries(ctx: RunContext) -> list:
    """``[setting] queries`` (a file), or the model's default: the organism's held-out requests (harmful and
    benign) for the organism; AdvBench plus the built-in benign set for real models."""
    if "queries" not in ctx.cache:
        s = ctx.config.setting
        limit = s.limit or None
        if s.queries:
            from interp_af.setting.queries import benign_queries, load_queries

            qs = load_queries(s.queries, limit=limit) + (benign_queries() if s.benign else [])
        elif is_organism(ctx):
            from interp_af.organism import organism_queries

            qs = organism_queries("eval", n=limit or 200)  # 0 = the organism's standard 200
            qs = qs if s.benign else [q for q in qs if q.harmful]
        else:
            from interp_af.setting.queries import benign_queries, load_queries

            qs = load_queries(None, limit=limit) + (benign_queries() if s.benign else [])
        ctx.cache["queries"] = qs
    return ctx.cache["queries"]


def variants(ctx: RunContext) -> tuple[str, ...]:
    """The main variant first, then the contrasts."""
    s = ctx.config.setting
    return (s.variant, *[v for v in s.contrasts if v != s.variant])


def twins(ctx: RunContext, variant: str, *, harmful: bool | None = None) -> list:
    """Rendered twins of ``variant`` (``harmful``: True = harmful queries only, False = benign only)."""
    key = ("twins", variant)
    if key not in ctx.cache:
        from interp_af.setting.twins import make_twins

        ctx.cache[key] = make_twins(handle(ctx).tokenizer, queries(ctx), variant, progress=False)
    tw = ctx.cache[key]
    if harmful is None:
        return tw
    return [t for t in tw if bool(t.a.meta.get("harmful", True)) == harmful]


def _round(x: Any, nd: int = 4) -> Any:
    if isinstance(x, float):
        return round(x, nd)
    if isinstance(x, (list, tuple)):
        return [_round(v, nd) for v in x]
    if isinstance(x, dict):
        return {k: _round(v, nd) for k, v in x.items()}
    return x


# ------------------------------------------------------------------------------------------ gap
def stage_gap(ctx: RunContext) -> dict[str, Any]:
    """Compliance per arm and the gap for the main variant and every contrast; benign compliance beside it."""
    from interp_af.analysis.gap import compute_gap
    from interp_af.report.gap import write_gap_figure

    g = ctx.config.gap
    out: dict[str, Any] = {"main": ctx.config.setting.variant, "variants": {}}
    for v in variants(ctx):
        row: dict[str, Any] = {}
        for kind, harmful in (("harmful", True), ("benign", False)):
            tw = twins(ctx, v, harmful=harmful)
            if not tw:
                continue
            res = compute_gap(handle(ctx), tw, metric=g.metric, n_boot=g.n_bootstrap, seed=g.seed, progress=False,
                              batch_size=g.batch_size,
                              config={"variant": v, "queries": kind})
            res.save(ctx.stage_dir / v / kind)
            if v == ctx.config.setting.variant and kind == "harmful":
                write_gap_figure(res, ctx.stage_dir, stem="gap")
            row[kind] = {"arms": list(res.arms), "compliance": res.compliance, "compliance_ci": res.compliance_ci,
                         "gap": res.gap, "gap_ci": list(res.gap_ci), "logit_diff_gap": res.logit_diff_gap,
                         "logit_diff_gap_ci": list(res.logit_diff_gap_ci), "n": res.n_queries}
        out["variants"][v] = row
    from interp_af.report.figures import write_figure
    from interp_af.report.gap import contrast_figure

    write_figure(contrast_figure(out["variants"], out["main"]), ctx.stage_dir / "contrasts")
    return _round(out)


# ------------------------------------------------------------------------------------------ capture
def capture_path(run_dir: Path) -> Path:
    return run_dir / "capture" / "acts"


def stage_capture(ctx: RunContext) -> dict[str, Any]:
    """Every arm of every variant (main + contrasts), at the configured sites, layers and named positions."""
    from interp_af.capture.write import capture
    from interp_af.setting.twins import render_arms

    c = ctx.config.capture
    tok = handle(ctx).tokenizer
    prompts = [p for v in variants(ctx) for p in render_arms(tok, queries(ctx), v, progress=False)]
    cap = capture(handle(ctx), prompts, capture_path(ctx.run_dir), sites=c.sites, layers=c.layers or None,
                  positions=c.positions, batch_size=c.batch_size, adapter=ctx.config.model.adapter or None,
                  progress=True)
    return {"path": str(capture_path(ctx.run_dir).relative_to(ctx.run_dir)), "rows": cap.n_rows,
            "sites": list(cap.sites), "layers": list(cap.layers), "positions": list(cap.positions)}


# ------------------------------------------------------------------------------------------ probes
def stage_probes(ctx: RunContext) -> dict[str, Any]:
    """Probes for each label on the main variant and its policy contrast; controls; transfer; cue geometry."""
    from interp_af.analysis.probe_transfer import Condition, cue_cosines, transfer_capture
    from interp_af.analysis.probes import ProbeConfig, merge, probe_capture
    from interp_af.capture.store import open_capture
    from interp_af.report.probes import auroc_figure, cosine_figure, transfer_figure, write_figure

    p = ctx.config.probes
    cap = open_capture(capture_path(ctx.run_dir))
    cfg = ProbeConfig(n_folds=p.folds, seed=p.seed)
    meta = cap.meta()
    main = ctx.config.setting.variant
    # "in training" is only defined where a policy is stated: probe on the variants that state one.
    stated = [v for v in variants(ctx) if v in set(meta["variant"]) and
              meta.loc[meta["variant"] == v, "in_training"].astype(bool).any()]
    where = "variant in " + repr(stated)
    arms = {v: tuple(meta.loc[meta["variant"] == v, "arm"].unique()) for v in stated}
    first_arm = twins(ctx, main)[0].a.arm if main in stated else ""

    def spec(label: str) -> tuple[str, str]:
        # "arm" is the tier the prompt shows; other variants may name their arms differently, so the arm
        # probe runs on the main variant only, as "arm=<its first arm>".
        return (f"arm={first_arm}", f"variant == {main!r}") if label == "arm" else (label, where)

    results = [probe_capture(cap, lab, where=w, config=cfg) for lab, w in map(spec, p.labels)]
    res = merge(results)
    res.save(ctx.stage_dir)
    write_figure(auroc_figure(res, title="Probe AUROC by layer"), ctx.stage_dir / "auroc")
    summary: dict[str, Any] = {"labels": list(p.labels), "variants": stated, "leakage": list(res.leakage),
                               "notes": list(res.notes)}
    frame = res.to_frame()
    first = spec(p.labels[0])[0]
    real = frame[(frame["control"] == "none") & (frame["kind"] == "logreg") & (frame["position"] == "decision")
                 & (frame["label"].astype(str).str.startswith(first))]
    if len(real):
        best = real.sort_values(["auroc", "layer"], ascending=[False, True]).iloc[0]
        ctrl = frame[(frame["control"] != "none") & (frame["label"] == best["label"])]
        summary["best"] = {"label": p.labels[0], "layer": int(best["layer"]), "position": "decision",
                           "auroc": float(best["auroc"]), "auroc_ci": [float(best["auroc_lo"]), float(best["auroc_hi"])],
                           "control_auroc": float(ctrl["auroc"].max()) if len(ctrl) else None}
    if res.probes is not None:
        t0 = twins(ctx, main)[0]
        cos = cue_cosines(res.probes, cap.cue_embeddings(), arms=(t0.a.arm, t0.b.arm))
        cos.to_csv(ctx.stage_dir / "cue_cosine.csv", index=False)
        write_figure(cosine_figure(cos, title="Cosine of probe directions with the cue-token embedding difference"),
                     ctx.stage_dir / "cue_cosine")
        summary["cue_cosine"] = cos.to_dict(orient="records")
    inverted = [v for v in stated if v != main]
    if inverted:
        same_arms = set(arms[inverted[0]]) == set(arms[main])
        labels = ("in_training", f"arm={first_arm}") if same_arms else ("in_training",)
        conds = [Condition(f"{v}:{lab}", lab, f"variant == {v!r}") for v in (main, inverted[0]) for lab in labels]
        tr = transfer_capture(cap, conds, site=cap.sites[0], position="decision", config=cfg)
        tr.save(ctx.stage_dir / "transfer")
        write_figure(transfer_figure(tr, title="Train on one condition, test on another"), ctx.stage_dir / "transfer")
        summary["transfer"] = tr.to_frame().to_dict(orient="records")
    return _round(summary)


STAGES_IMPL = {"gap": stage_gap, "capture": stage_capture, "probes": stage_probes}


def stage_functions(names: Sequence[str]) -> dict[str, Any]:
    """The stage functions for ``names`` (imported lazily so that unused stages cost nothing)."""
    from interp_af.pipeline import causal

    impl = {**STAGES_IMPL, "patching": causal.stage_patching, "steering": causal.stage_steering,
            "sae": causal.stage_sae}
    return {n: impl[n] for n in names}
