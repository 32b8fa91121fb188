"""The causal stages of ``interp-af run``: activation + attribution patching, steering, SAE features.

Patching and steering run on the harmful twins of the main variant. Steering picks its layer on a *selection*
half of the queries and reports the gap closed on the other half, so the headline number is not chosen on
the data it is reported on.
"""

from __future__ import annotations

from typing import Any

from interp_af.pipeline.runner import RunContext
from interp_af.pipeline.stages import _round, handle, twins


def _patch_twins(ctx: RunContext, limit: int) -> list:
    tw = [t for t in twins(ctx, ctx.config.setting.variant, harmful=True) if t.aligned]
    return tw[:limit] if limit else tw


def _top_cell(res: Any) -> dict[str, Any]:
    """The cell of largest effect in a PatchResult, with its interval."""
    import torch

    eff = res.effect()
    lo, hi = res.interval()
    flat = torch.nan_to_num(eff, nan=float("-inf")).flatten()
    i, j, k = (int(v) for v in torch.unravel_index(flat.argmax(), eff.shape))
    return {"site": res.site, "direction": res.direction, "layer": res.layers[i],
            "head": None if res.heads[j] < 0 else res.heads[j], "column": res.columns[k],
            "effect": float(eff[i, j, k]), "ci": [float(lo[i, j, k]), float(hi[i, j, k])]}


def stage_patching(ctx: RunContext) -> dict[str, Any]:
    """Exact patching (denoise and noise) for each configured site; attribution patching checked against it."""
    from interp_af.analysis.attribution import attribute, validate_attribution
    from interp_af.analysis.patching import patch_twins
    from interp_af.report import patching as figs

    p = ctx.config.patching
    h, tw = handle(ctx), _patch_twins(ctx, p.limit)
    out: dict[str, Any] = {"n_queries": len(tw), "top": {}, "attribution": {}}
    exact = {}
    for direction in ("denoise", "noise"):
        for site in p.sites:
            res = patch_twins(h, tw, site=site, direction=direction, progress=False)
            res.save(ctx.stage_dir / f"{direction}_{site}")
            figs.write_figure(figs.patch_heatmap(res), ctx.stage_dir, f"{direction}_{site}")
            out["top"][f"{direction}/{site}"] = _top_cell(res)
            if direction == "denoise":
                exact[site] = res
    denoise = [v for k, v in out["top"].items() if k.startswith("denoise/")]
    out["top_site"] = max(denoise, key=lambda c: c["effect"]) if denoise else None
    if p.attribution and tw:
        for method in ("atp", "ig"):
            sub = tw if method == "atp" else tw[: p.ig_queries]
            est = attribute(h, sub, sites=p.sites, method=method, steps=p.ig_steps, progress=False)
            check = validate_attribution(h, sub, est, k=20, progress=False)
            check.to_frame().to_csv(ctx.stage_dir / f"attribution_{method}.csv", index=False)
            figs.write_figure(figs.attribution_scatter(check), ctx.stage_dir, f"attribution_{method}")
            out["attribution"][method] = {"spearman": check.spearman, "n_queries": len(sub)}
    return _round(out)


def stage_steering(ctx: RunContext) -> dict[str, Any]:
    """Mean-difference steering of the paid arm toward the free arm, with norm-matched random and flipped
    controls; layer chosen on a selection split, effect reported on the held-out split."""
    from interp_af.analysis.steering import mean_difference, steer
    from interp_af.errors import InterpAFError
    from interp_af.report.patching import write_figure
    from interp_af.report.steering import dose_response

    s = ctx.config.steering
    h = handle(ctx)
    tw = _patch_twins(ctx, 0)
    select, report = tw[: max(4, len(tw) // 4)], tw[max(4, len(tw) // 4):]
    # Default candidates: the middle half of depth (steering works at early-middle layers; next to the
    # unembedding any direction, random ones included, moves the logits).
    layers = s.layers or tuple(range(h.n_layers // 4, max(h.n_layers // 4 + 1, (3 * h.n_layers) // 4)))
    alphas = tuple(a for a in s.alphas if a != 0.0)
    unit = 1.0 if 1.0 in alphas else max(alphas)

    def closed_at(res: Any, control: str) -> float:
        return float(res.closed(arm=1)[res.controls.index(control), res.alphas.index(unit)])

    import torch

    scores: dict[int, float] = {}
    skipped: list[str] = []
    for L in layers:
        d = mean_difference(h, select, layer=L)
        if not bool(torch.isfinite(d).all()) or float(d.norm()) == 0.0:
            # the arms do not differ here (e.g. the cue lies outside a sliding-attention window): nothing to steer
            skipped.append(f"layer {L}: the free-minus-paid mean difference is zero")
            continue
        res = steer(h, select, d, layers=(L,), alphas=(unit,), n_random=0, flipped=False, progress=False)
        scores[L] = closed_at(res, res.controls[0])
    if not scores:
        raise InterpAFError(f"steering: the arms' activations do not differ at any of layers {list(layers)}; "
                            "check the twins differ at the cue (interp-af prompts) or set [steering] layers")
    best = max(scores, key=lambda L: scores[L])
    d = mean_difference(h, select, layer=best)
    res = steer(h, report or select, d, layers=(best,), alphas=alphas, n_random=s.n_random, progress=False)
    res.save(ctx.stage_dir)
    write_figure(dose_response(res), ctx.stage_dir, "dose_response")
    randoms = [c for c in res.controls if c.startswith("random")]
    return _round({
        "layer": best, "selection_scores": {str(k): v for k, v in scores.items()}, "skipped": skipped, "alpha": unit,
        "n_select": len(select), "n_report": len(report or select),
        "gap_closed": closed_at(res, res.controls[0]),
        "random_gap_closed": max((abs(closed_at(res, c)) for c in randoms), default=None),
        "flipped_gap_closed": closed_at(res, "flipped") if "flipped" in res.controls else None,
        "cue_cosine": res.cue_cosine,
    })


def stage_sae(ctx: RunContext) -> dict[str, Any]:
    """SAE quality, differential and attributed features, and ablation of the top gap features vs random
    feature sets, on the harmful twins of the main variant."""
    from interp_af.analysis.sae.load import load_sae, organism_sae_paths
    from interp_af.analysis.sae.study import StudyConfig as SaeStudy
    from interp_af.analysis.sae.study import run_study
    from interp_af.errors import InterpAFError
    from interp_af.models.metric import decision_tokens

    s = ctx.config.sae
    h = handle(ctx)
    if s.path:
        saes = [load_sae(s.path, sae_id=s.sae_id or None, handle=h)]
    elif ctx.config.model.path == "organism":
        saes = [load_sae(p, handle=h) for p in organism_sae_paths()]
    else:
        raise InterpAFError("[sae] path is empty and the model is not the organism; set [sae] path to a local SAE "
                            "folder or a sae-lens release (with sae_id), or drop 'sae' from stages")
    tw = _patch_twins(ctx, ctx.config.patching.limit * 2)
    prompts = [p for t in tw for p in (t.a, t.b)]
    full = run_study(h, saes, prompts, decision_tokens(h.tokenizer), ctx.stage_dir,
                     SaeStudy(k=s.top_k, n_random=s.n_random))
    site, entry = next(iter(full["saes"].items()))
    # The headline is read where the metric is read ("metric": the decision token plus the answers' shared
    # prefix); the decision-position numbers stay in the study's own summary.json beside it.
    pos = "metric" if "metric" in entry["positions"] else "decision"
    q, dec = entry["quality"], entry["positions"].get(pos, {})
    abl = dec.get("ablation", {})
    base = abl.get("gap_baseline") or float("nan")
    return _round({
        "site": site, "position": pos, "n_prompts": len(prompts), "fve": q["fve"], "l0": q["l0"], "dead_fraction": q["dead_fraction"],
        "splice_err_max_abs": q["splice_err_max_abs"],
        "top_feature": (dec.get("top_gap_features") or [None])[0], "top_features": dec.get("top_gap_features"),
        "gap_baseline": abl.get("gap_baseline"), "delta_gap_ablation": abl.get("delta_gap_chosen"),
        "delta_gap_random_mean": abl.get("delta_gap_random_mean"),
        "gap_closed_by_ablation": -abl["delta_gap_chosen"] / base if abl else None,
        "random_gap_closed_by_ablation": -abl["delta_gap_random_mean"] / base if abl else None,
        "layer": int(site.rsplit(".", 1)[-1]) if "." in site else None,
    })
