"""Stage ``patching``: where does the gap flow? Exact activation patching, and attribution patching checked
against it.

On the first ``n_queries`` aligned harmful twins of the main variant: exact patching of each site, denoising
(clean arm into the corrupt run: sufficiency) and noising (corrupt into clean: necessity), normalised so
0 = unpatched and 1 = the other arm (:mod:`interp_af.analysis.patching`). Then attribution patching (AtP and
integrated gradients) estimates every cell at once, and exact patching of its top ``validate_k`` cells per site
says how far the estimate can be trusted (Spearman per site; :mod:`interp_af.analysis.attribution`).

``mode = "screen"`` is for models too deep to sweep exactly (a 30-layer model on CPU): attribution patching
(AtP) estimates every cell of every site and direction, and only its top ``confirm_top`` cells per site and
direction are patched exactly (:mod:`interp_af.analysis.screening`). The exact grids then hold those cells
and NaN elsewhere, the estimates are kept beside them, and the summary and report say how many cells were
patched exactly and how many were only screened: a cell the screen ranked low was never measured.

API: :func:`patch` (``interp_af.patch``); CLI: ``interp-af patch``; TOML: ``[patching]``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interp_af.analysis.vocab import DIRECTIONS, METHODS

MODES = ("exact", "screen")
from interp_af.models.sites import SITES
from interp_af.options import option, validate
from interp_af.report.page import Contribution, FigureBlock, Finding, Section
from interp_af.stages.base import StageContext, StageSpec, register_stage
from interp_af.stages.util import rounded, write_json


@dataclass(frozen=True)
class PatchingConfig:
    """Which sites are patched, on how many twins, and how attribution is checked."""

    sites: tuple[str, ...] = option(("resid_pre", "attn_out", "mlp_out", "head_out"), "Sites to patch.",
                                    choices=SITES, min_items=1)
    n_queries: int = option(16, "Aligned harmful twins of the main variant patched (fewer when fewer align).", min=1)
    directions: tuple[str, ...] = option(DIRECTIONS, "denoise (clean into corrupt: sufficiency) and/or noise "
                                                     "(corrupt into clean: necessity).", choices=DIRECTIONS,
                                         min_items=1)
    clean: str = option("a", "The clean arm: a (the variant's first, trained arm) or b.", choices=("a", "b"))
    layers: tuple[int, ...] = option((), "Layers to patch (() = all).", min=0)
    heads: tuple[int, ...] = option((), "Heads for head_out (() = all).", min=0)
    by_position: str = option("auto", "Cells per position: auto (yes for the residual stream, no otherwise), yes "
                                      "or no.", choices=("auto", "yes", "no"))
    attribution: tuple[str, ...] = option(METHODS, "Attribution methods run and validated against exact "
                                                   "patching (() = none).", choices=METHODS)
    ig_steps: int = option(10, "Integrated-gradients steps.", min=1)
    ig_queries: int = option(4, "Twins for integrated gradients (it costs ~steps x layers passes per twin).", min=1)
    validate_k: int = option(20, "Top cells per site checked by exact patching.", min=1)
    mode: str = option("exact", "exact (patch every cell) or screen (attribution patching estimates every cell, "
                                "the top confirm_top per site and direction are patched exactly).", choices=MODES)
    confirm_top: int = option(16, "screen mode: cells per site and direction patched exactly (the screen's top "
                                  "cells by |estimated effect|).", min=1)
    batch_size: int = option(64, "Patched rows per forward pass.", min=1)
    n_boot: int = option(1000, "Query-bootstrap resamples for the intervals.", min=1)
    seed: int = option(0, "Bootstrap seed.")

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True)
class TopCell:
    site: str
    direction: str
    layer: int
    head: int | None
    column: str
    effect: float
    ci: tuple[float, float]


@dataclass(frozen=True)
class AttributionSummary:
    spearman: dict[str, float]
    n_queries: int


@dataclass(frozen=True)
class CellCounts:
    """How one grid was covered: ``cells`` in it at or after the first differing token (earlier cells are exactly
    zero in both runs), ``exact`` of them patched exactly, ``screened_only`` of them estimated by attribution
    patching and never patched exactly."""

    cells: int
    exact: int
    screened_only: int


@dataclass(frozen=True)
class PatchingSummary:
    n_queries: int
    top: dict[str, TopCell]                        # "<direction>/<site>" -> its largest (exactly patched) cell
    attribution: dict[str, AttributionSummary]     # method -> Spearman vs exact per site
    top_site: TopCell | None = None                # the largest denoising cell over all sites
    mode: str = "exact"                            # "exact" (every cell patched) or "screen" (top cells confirmed)
    coverage: dict[str, CellCounts] = field(default_factory=dict)   # "<direction>/<site>" -> how it was covered
    swept: str = ""                                # one sentence: what was patched exactly, what only screened


@dataclass(frozen=True)
class PatchStudy:
    """``exact[(direction, site)]``: the exact patch grids; ``checks[method]``: attribution vs exact.

    In screen mode (``mode = "screen"``) ``exact`` holds only the confirmed cells (NaN elsewhere) and
    ``screened[(direction, site)]`` the attribution estimate of every cell."""

    exact: dict[tuple[str, str], Any]
    checks: dict[str, Any] = field(default_factory=dict)
    check_queries: dict[str, int] = field(default_factory=dict)
    n_queries: int = 0
    mode: str = "exact"
    screened: dict[tuple[str, str], Any] = field(default_factory=dict)

    def save(self, out: str | Path) -> Path:
        out = Path(out)
        for (direction, site), res in self.exact.items():
            res.save(out / f"{direction}_{site}")
        for (direction, site), res in self.screened.items():
            res.save(out / f"screen_{direction}_{site}")
        for method, check in self.checks.items():
            check.to_frame().to_csv(out / f"attribution_{method}.csv", index=False)
        write_json(out / "patch_study.json", {
            "exact": [list(k) for k in self.exact], "n_queries": self.n_queries, "mode": self.mode,
            "screened": [list(k) for k in self.screened],
            "checks": {m: {"spearman": c.spearman, "n_queries": self.check_queries.get(m, 0)}
                       for m, c in self.checks.items()}})
        return out

    @classmethod
    def load(cls, out: str | Path) -> "PatchStudy":
        import pandas as pd

        from interp_af.analysis.attribution import AttributionCheck
        from interp_af.analysis.patching import PatchResult

        out = Path(out)
        index = json.loads((out / "patch_study.json").read_text())
        exact = {(d, s): PatchResult.load(out / f"{d}_{s}") for d, s in index["exact"]}
        checks = {m: AttributionCheck(m, c["spearman"], pd.read_csv(out / f"attribution_{m}.csv"))
                  for m, c in index["checks"].items()}
        screened = {(d, s): PatchResult.load(out / f"screen_{d}_{s}") for d, s in index.get("screened", [])}
        return cls(exact, checks, {m: c["n_queries"] for m, c in index["checks"].items()}, index["n_queries"],
                   index.get("mode", "exact"), screened)


def top_cell(res: Any) -> TopCell:
    """The cell of largest effect in a PatchResult (among the cells patched exactly), with its interval."""
    import torch

    eff = res.effect()
    lo, hi = res.interval()
    flat = torch.nan_to_num(eff, nan=float("-inf")).flatten()
    i, j, k = (int(v) for v in torch.unravel_index(flat.argmax(), eff.shape))
    return TopCell(res.site, res.direction, res.layers[i], None if res.heads[j] < 0 else res.heads[j],
                   res.columns[k], float(eff[i, j, k]), (float(lo[i, j, k]), float(hi[i, j, k])))


def patch(target: Any, config: PatchingConfig | None = None, *, progress: bool = True) -> PatchStudy:
    """Exact patching of every configured site and direction on ``target``'s main-variant twins, then
    attribution patching validated against it (``mode = "screen"``: :func:`screen`)."""
    from tqdm import tqdm

    from interp_af.analysis.attribution import attribute, validate_attribution
    from interp_af.analysis.patching import patch_twins
    from interp_af.targets import ResolvedTarget, resolve

    t = target if isinstance(target, ResolvedTarget) else resolve(target)
    p = config or PatchingConfig()
    if p.mode == "screen":
        return screen(t, p, progress=progress)
    h, tw = t.handle, t.patch_twins(p.n_queries)
    by_pos = {"auto": None, "yes": True, "no": False}[p.by_position]
    layers = list(p.layers) or None
    exact: dict[tuple[str, str], Any] = {}
    # one bar over the stage's passes (each exact grid, each attribution and its validation); the passes
    # draw their own bar over queries below it
    bar = tqdm(total=len(p.directions) * len(p.sites) + 2 * len(p.attribution), desc="patching", unit="pass",
               disable=not progress)
    for direction in p.directions:
        for site in p.sites:
            bar.set_postfix_str(f"exact {site} ({direction})", refresh=False)
            exact[(direction, site)] = patch_twins(
                h, tw, site=site, direction=direction, clean=p.clean, by_position=by_pos, layers=layers,
                heads=(list(p.heads) or None) if site == "head_out" else None, batch_size=p.batch_size,
                n_boot=p.n_boot, seed=p.seed, progress=progress)
            bar.update()
    checks, n_check = {}, {}
    for method in p.attribution:
        sub = tw if method == "atp" else tw[: p.ig_queries]
        bar.set_postfix_str(f"attribution {method}", refresh=False)
        est = attribute(h, sub, sites=p.sites, method=method, steps=p.ig_steps, clean=p.clean, layers=layers,
                        n_boot=p.n_boot, seed=p.seed, progress=progress)
        bar.update()
        bar.set_postfix_str(f"validate {method} against exact patching", refresh=False)
        checks[method] = validate_attribution(h, sub, est, k=p.validate_k, batch_size=p.batch_size, progress=progress)
        n_check[method] = len(sub)
        bar.update()
    bar.close()
    return PatchStudy(exact, checks, n_check, len(tw))


def screen(t: Any, p: PatchingConfig, *, progress: bool = True) -> PatchStudy:
    """Screen mode: AtP estimates every cell of every site and direction; the top ``confirm_top`` cells of each
    are patched exactly (:func:`interp_af.analysis.screening.confirm`). The AtP check is the screen's own
    comparison on the confirmed denoising cells; other listed attribution methods are validated as usual."""
    from interp_af.analysis.attribution import DEFAULT_GRID, attribute, validate_attribution
    from interp_af.analysis.screening import confirm, screen_check
    from tqdm import tqdm

    h, tw = t.handle, t.patch_twins(p.n_queries)
    others = [m for m in p.attribution if m != "atp"]
    bar = tqdm(total=2 * len(p.directions) + len(others), desc="patching (screen)", unit="pass",
               disable=not progress)
    layers = list(p.layers) or None
    # "auto": the attribution grid (per position except head_out): screening a finer grid costs nothing extra
    grid = {"auto": DEFAULT_GRID, "yes": {s: True for s in DEFAULT_GRID},
            "no": {s: False for s in DEFAULT_GRID}}[p.by_position]
    exact: dict[tuple[str, str], Any] = {}
    screened: dict[tuple[str, str], Any] = {}
    checks, n_check = {}, {}
    for direction in p.directions:
        est = attribute(h, tw, sites=p.sites, method="atp", direction=direction, clean=p.clean, layers=layers,
                        by_position=grid, n_boot=p.n_boot, seed=p.seed, progress=progress)
        bar.update()
        if p.heads:
            est = {s: _keep_heads(r, p.heads) if s == "head_out" else r for s, r in est.items()}
        confirmed = {s: confirm(h, tw, est[s], k=p.confirm_top, dt=t.dt, batch_size=p.batch_size,
                                progress=progress) for s in p.sites}
        bar.update()
        for s in p.sites:
            screened[(direction, s)], exact[(direction, s)] = est[s], confirmed[s]
        if direction == "denoise" and "atp" in p.attribution:
            checks["atp"], n_check["atp"] = screen_check(est, confirmed), len(tw)
    for method in others:
        sub = tw[: p.ig_queries]
        est = attribute(h, sub, sites=p.sites, method=method, steps=p.ig_steps, clean=p.clean, layers=layers,
                        n_boot=p.n_boot, seed=p.seed, progress=progress)
        checks[method] = validate_attribution(h, sub, est, k=p.validate_k, batch_size=p.batch_size, progress=progress)
        n_check[method] = len(sub)
        bar.update()
    bar.close()
    return PatchStudy(exact, checks, n_check, len(tw), "screen", screened)


def _keep_heads(res: Any, heads: tuple[int, ...]) -> Any:
    """An estimate restricted to ``heads`` (the screen estimates every head at once; only these are confirmed)."""
    import dataclasses

    idx = [res.heads.index(h) for h in heads if h in res.heads]
    return dataclasses.replace(res, heads=tuple(res.heads[i] for i in idx), patched=res.patched[:, :, idx],
                               computed=res.computed[:, idx])


def coverage(study: PatchStudy) -> dict[str, CellCounts]:
    """How each grid was covered: cells, cells patched exactly, cells only screened."""
    out = {}
    for (d, s), r in study.exact.items():
        if study.mode == "screen":
            n, k = int(r.info.get("cells_live", r.computed.numel())), int(r.computed.sum())
            out[f"{d}/{s}"] = CellCounts(n, k, n - k)
        else:   # every cell at or after the first differing token was patched; earlier ones are exactly zero
            n = int(r.computed.sum())
            out[f"{d}/{s}"] = CellCounts(n, n, 0)
    return out


def swept_sentence(study: PatchStudy, cov: dict[str, CellCounts]) -> str:
    """One sentence for the summary and the report: what was patched exactly, what was only screened."""
    total = sum(c.cells for c in cov.values())
    exact = sum(c.exact for c in cov.values())
    if study.mode != "screen":
        return (f"exact sweep: all {total} cells of {len(cov)} grids patched exactly on {study.n_queries} "
                "twins (cells before the first differing token are exactly zero and were not run)")
    per = sorted({c.exact for c in cov.values()})
    return (f"screen: attribution patching (AtP) estimated all {total} cells from the first differing token on, "
            f"in {len(cov)} grids on "
            f"{study.n_queries} twins; the top {'/'.join(map(str, per))} per grid ({exact} cells) were patched "
            f"exactly and the other {total - exact} were only screened (estimated, never patched)")


def summarize(study: PatchStudy) -> PatchingSummary:
    top = {f"{d}/{s}": top_cell(r) for (d, s), r in study.exact.items()}
    denoise = [c for k, c in top.items() if k.startswith("denoise/")]
    cov = coverage(study)
    return rounded(PatchingSummary(
        study.n_queries, top,
        {m: AttributionSummary(dict(c.spearman), study.check_queries.get(m, 0)) for m, c in study.checks.items()},
        max(denoise, key=lambda c: c.effect) if denoise else None, study.mode, cov, swept_sentence(study, cov)))


CAPTIONS = {
    "resid_pre": ("Denoising activation patching of the residual stream (corrupt run, clean activations patched "
                  "in), layer x position; 1 = fully restores the clean-arm decision.",
                  "A single-hop cue effect lights up the cue column only; an inferred state moves the effect to "
                  "later positions (end of user turn, decision) at middle layers."),
    "head_out": ("Denoising patching of each attention head's output (all positions), layer x head.",
                 "Heads that move information from the cue or the policy to the decision are the candidate circuit."),
    "other": ("Denoising patching of a sub-layer's output, layer x position.",
              "Where the sub-layer's contribution carries the gap, its cells light up."),
    "screen": ("Attribution patching (AtP, gradient x activation difference) estimate of every cell: the screen "
               "that chose which cells were patched exactly.",
               "An estimate, not a measurement: trusted only as far as its Spearman with the confirmed cells "
               "goes, and blind to effects that are far from linear in the activation."),
    "attribution": ("Attribution patching (gradient x activation difference) vs exact patching on the top cells, "
                    "plain and integrated gradients.",
                    "Fast estimates are only trusted where their rank correlation with exact patching is high."),
}


def report(study: PatchStudy, summary: PatchingSummary) -> Contribution:
    from interp_af.report.patching import attribution_figure, patch_heatmap

    figs = []
    for (direction, site), res in study.exact.items():
        if direction != "denoise":
            continue
        what, evidence = CAPTIONS.get(site, CAPTIONS["other"])
        if study.mode == "screen":
            what = (f"{what} Screen mode: only the top {int(res.computed.sum())} cells of the AtP screen were "
                    "patched exactly; blank cells were only screened (see the screen figure).")
        figs.append(FigureBlock.build(f"patch_{site}", f"Activation patching: {site}", lambda res=res: patch_heatmap(res),
                                      what=what, evidence=evidence, source=f"patching/denoise_{site}"))
        if (direction, site) in study.screened:
            est = study.screened[(direction, site)]
            figs.append(FigureBlock.build(
                f"screen_{site}", f"Attribution screen: {site}", lambda est=est: patch_heatmap(est),
                what=f"{CAPTIONS['screen'][0]} ({site})", evidence=CAPTIONS["screen"][1],
                source=f"patching/screen_denoise_{site}"))
    if study.checks:
        checks = list(study.checks.values())
        figs.append(FigureBlock.build("attribution", "Attribution patching vs exact",
                                      lambda: attribution_figure(checks), what=CAPTIONS["attribution"][0],
                                      evidence=CAPTIONS["attribution"][1], source="patching/attribution_*.csv"))
    findings = []
    if summary.top_site is not None:
        c = summary.top_site
        name = f"{c.site}.{c.layer}" + (f".h{c.head}" if c.head is not None else "")
        key = f"patch_{c.site}" if any(b.key == f"patch_{c.site}" for b in figs) else None
        findings.append(Finding("where does the effect enter?", f"largest denoising cell: {name} @ {c.column}",
                                c.effect, c.ci, ".2f", key))
    if summary.coverage:
        n = sum(c.cells for c in summary.coverage.values())
        k = sum(c.exact for c in summary.coverage.values())
        findings.append(Finding("what was patched exactly?", summary.swept, k / n if n else None, None, ".1%", None))
    for m, a in summary.attribution.items():
        for s, r in a.spearman.items():
            findings.append(Finding(f"can {m} be trusted on {s}?", "Spearman of estimate vs exact, top cells",
                                    r, None, ".2f", "attribution"))
    return Contribution((Section("patching", "Activation and attribution patching", tuple(figs)),), tuple(findings))


def _run(ctx: StageContext) -> PatchStudy:
    study = patch(ctx.target, ctx.config, progress=ctx.progress)
    study.save(ctx.out)
    return study


STAGE = register_stage(StageSpec(
    name="patching", config=PatchingConfig, run=_run, load=PatchStudy.load, summarize=summarize,
    summary_type=PatchingSummary, report=report,
    description="exact activation patching (denoise + noise) and attribution patching checked against it"))
