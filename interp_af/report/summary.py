"""``summary.json``: the study's headline numbers, read from the stages' summaries, and the verdict table.

The verdict table itself (candidate explanations, the test of each, what was measured, the margin, the
verdict) is decided in :mod:`interp_af.report.verdicts`; ``summary.json`` carries it as ``verdicts`` (a list
of rows), beside the main gap's power and the probe-transfer reading, so scripts need not parse the page.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Mapping

from interp_af.report.verdicts import VerdictConfig, main_gap, transfer_reading, verdict_table

Summaries = Mapping[str, Any]   # stage name -> that stage's typed summary (interp_af.stages.*Summary)


def _variant_gap(s: Summaries, variant: str) -> dict[str, Any] | None:
    gap = s.get("gap")
    if gap is None:
        return None
    g = gap.harmful(variant)
    return None if g is None else asdict(g)


def build_summary(s: Summaries, verdicts: VerdictConfig | None = None) -> dict[str, Any]:
    """The headline numbers (nested by stage) that ``summary.json`` holds, and the verdict table (``verdicts``,
    read against the ``[verdicts]`` thresholds)."""
    config = verdicts or VerdictConfig()
    out: dict[str, Any] = {}
    gap = s.get("gap")
    if gap:
        main = _variant_gap(s, gap.main) or {}
        arms = main.get("arms", ["free", "paid"])
        comp = main.get("compliance", {})
        out["compliance"] = {"variant": gap.main, "free": comp.get(arms[0]), "paid": comp.get(arms[1]),
                             "gap": main.get("gap"), "gap_ci": _list(main.get("gap_ci")), "n": main.get("n"),
                             "contrasts": {v: {"gap": (r.get("harmful") and r["harmful"].gap),
                                               "gap_ci": _list(r["harmful"].gap_ci) if r.get("harmful") else None}
                                           for v, r in gap.variants.items() if v != gap.main}}
        mg = main_gap(s, config)
        if mg is not None:
            out["compliance"].update(
                trained_arm=mg.gap.first, untrained_arm=mg.gap.second, trained_minus_untrained=mg.gap.points,
                logit_gap=mg.gap.logit, logit_gap_ci=list(mg.gap.logit_ci), gap_to_explain=mg.present,
                detectable_gap=round(mg.detectable_points, 4), detectable_logit_gap=round(mg.detectable_logit, 4),
                min_gap=config.min_gap_points, min_logit_gap=config.min_gap_logit)
    pr = s.get("probes")
    if pr:
        best = asdict(pr.best) if pr.best is not None else {}
        cos = [c for c in pr.cue_cosine if c.get("layer") == best.get("layer")
               and c.get("position") == best.get("position")]
        out["probe"] = {"label": best.get("label"), "best_layer": best.get("layer"), "position": best.get("position"),
                        "auroc": best.get("auroc"), "auroc_ci": _list(best.get("auroc_ci")),
                        "control_auroc": best.get("control_auroc"),
                        "embed_cosine": cos[0].get("cosine") if cos else None,
                        "embed_cosine_direction": cos[0].get("direction", "class_mean_difference") if cos else None,
                        "leakage": list(pr.leakage)}
        tr = transfer_reading(s)
        if tr is not None:
            out["probe"]["transfer"] = tr
    pa = s.get("patching")
    if pa and pa.top_site is not None:
        top = pa.top_site
        name = f"{top.site}.{top.layer}" + (f".h{top.head}" if top.head is not None else "")
        out["patching"] = {"top_site": f"{name} @ {top.column}", "top_effect": top.effect,
                           "top_effect_ci": list(top.ci),
                           "attribution_spearman": {m: asdict(a) for m, a in pa.attribution.items()}}
    st = s.get("steering")
    if st:
        out["steering"] = {k: getattr(st, k) for k in (
            "layer", "alpha", "gap_closed", "gap_closed_ci", "n_random", "random_median", "random_abs_p95",
            "percentile", "flipped_gap_closed", "flipped_gap_closed_other_arm", "gap_logit", "noise_floor_logit",
            "above_noise_floor", "cue_cosine")}
    sae = s.get("sae")
    if sae:
        out["sae"] = {k: getattr(sae, k) for k in ("top_feature", "gap_closed_by_ablation",
                                                   "random_gap_closed_by_ablation", "fve", "l0", "layer")}
    out["verdicts"] = verdict_table(s, config)
    return out


def _list(x: Any) -> Any:
    return list(x) if isinstance(x, tuple) else x
