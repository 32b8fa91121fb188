"""Stage ``sae``: which sparse features carry the gap, and does removing them move it?

For each SAE (``[sae] path``: a sae-lens / sparsify folder, ``<release>/<sae id>`` from sae-lens's catalogue,
or ``""`` = the SAEs the target ships): its reconstruction quality *on the prompts studied* (FVE, L0, the
metric change when spliced in), differential and attributed features at named positions, their contexts, and
the causal test: zero-ablate the ``top_k`` features with the most gap attribution beside ``n_random`` random
feature sets of the same size (:mod:`interp_af.analysis.sae`). The headline is read where the metric is read
(position ``metric``: the decision token plus the answers' shared prefix).

API: :func:`sae` (``interp_af.sae``); CLI: ``interp-af sae run``; TOML: ``[sae]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interp_af.options import option, validate
from interp_af.report.page import Contribution, FigureBlock, Finding, Section
from interp_af.stages.base import StageContext, StageSpec, register_stage
from interp_af.stages.util import rounded

from interp_af.analysis.vocab import SAE_METHODS
from interp_af.analysis.vocab import SAE_MODES as MODES


@dataclass(frozen=True)
class SaeConfig:
    """Which SAEs, on how many twins, and how features are attributed and ablated."""

    path: str = option("", "An SAE folder (sae-lens or sparsify format) or '<sae-lens release>/<sae id>'; '' = the "
                           "SAEs the target ships.")
    sae_id: str = option("", "The SAE id inside a release, when path is only the release name.")
    n_queries: int = option(32, "Aligned harmful twins of the main variant studied (fewer when fewer align).", min=1)
    positions: tuple[str, ...] = option(("cue", "end_user", "decision", "metric"), "Named positions read ('metric' "
                                        "= where the metric is read).", min_items=1)
    ablate_positions: tuple[str, ...] = option(("decision", "metric"), "Positions where the top features are "
                                               "ablated.")
    method: str = option("gxa", "Attribution: gxa (gradient x activation) or ig (integrated gradients).",
                         choices=SAE_METHODS)
    steps: int = option(10, "Integrated-gradients steps.", min=1)
    top_k: int = option(5, "Features ablated (and the size of each random control set).", min=1)
    n_random: int = option(20, "Random feature sets ablated as controls (the effect is read against their "
                               "distribution).", min=0)
    mode: str = option("zero", "zero or mean ablation.", choices=MODES)
    top_n: int = option(15, "Features shown in figures and tables.", min=1)
    batch_size: int = option(8, "Prompts per forward pass.", min=1)
    allow_model_mismatch: bool = option(False, "Use an SAE trained on a sibling model (its fit is still reported).")
    seed: int = option(0, "Seed of the random feature sets.")

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True)
class SaeSummary:
    site: str
    position: str
    n_prompts: int
    fve: float
    l0: float
    dead_fraction: float
    splice_err_max_abs: float
    top_feature: int | None
    top_features: tuple[int, ...] | None
    gap_baseline: float | None
    delta_gap_ablation: float | None
    delta_gap_random_mean: float | None
    gap_closed_by_ablation: float | None
    random_gap_closed_by_ablation: float | None
    layer: int | None
    fit_notes: tuple[str, ...] = ()   # how to read the fit: dequantised weights, where the SAE was trained


def load_saes(target: Any, config: Any) -> list[Any]:
    """The SAEs a config names, checked against the target's model (one line on any misfit)."""
    from interp_af.analysis.sae.load import load_sae, sae_dirs
    from interp_af.errors import InterpAFError

    h = target.handle
    if config.path:
        release, _, sae_id = config.path.partition("/")
        if not Path(config.path).exists() and sae_id and not config.sae_id:
            return [load_sae(release, sae_id=sae_id, handle=h, allow_model_mismatch=config.allow_model_mismatch)]
        return [load_sae(config.path, sae_id=config.sae_id or None, handle=h,
                         allow_model_mismatch=config.allow_model_mismatch)]
    if target.target.saes is None:
        raise InterpAFError(f"[sae] path is empty and target {target.name!r} ships no SAEs; set [sae] path (--sae) to "
                            "a local SAE folder or a sae-lens release/id, or leave 'sae' out of the stages")
    return [load_sae(p, handle=h, allow_model_mismatch=config.allow_model_mismatch)
            for root in target.target.saes() for p in sae_dirs(root)]


def sae(target: Any, config: SaeConfig | None = None, *, saes: Any = None, progress: bool = True) -> Any:
    """The SAE study on ``target``'s main-variant twins. ``saes``: SAE objects to use instead of ``config.path``
    (``sae_lens.SAE`` objects or :class:`~interp_af.analysis.sae.LoadedSAE` s)."""
    from interp_af.analysis.sae.load import as_sae, check_fit
    from interp_af.analysis.sae.study import StudyConfig, run_study
    from interp_af.targets import ResolvedTarget, resolve

    t = target if isinstance(target, ResolvedTarget) else resolve(target)
    s = config or SaeConfig()
    if saes is not None:
        loaded = [as_sae(x) for x in (saes if isinstance(saes, (list, tuple)) else [saes])]
        for x in loaded:
            check_fit(x, t.handle, allow_model_mismatch=s.allow_model_mismatch)
    else:
        loaded = load_saes(t, s)
    tw = t.patch_twins(s.n_queries)
    prompts = [p for x in tw for p in (x.a, x.b)]
    cfg = StudyConfig(positions=s.positions, ablate_positions=s.ablate_positions, method=s.method, steps=s.steps,
                      k=s.top_k, n_random=s.n_random, mode=s.mode, seed=s.seed, batch_size=s.batch_size, top_n=s.top_n)
    import dataclasses

    study = run_study(t.handle, loaded, prompts, t.dt, cfg, progress=progress)
    return dataclasses.replace(study, fit_notes=fit_notes(t, loaded))


def fit_notes(target: Any, saes: list[Any]) -> tuple[str, ...]:
    """What a reader needs to judge an SAE's fit here: whether the model's weights are the original checkpoint
    (dequantised 4-bit weights move every activation a little, so an SAE trained on the original checkpoint
    reconstructs them worse than its release says), and, for an SAE trained by ``interp-af sae train``, what
    it was trained on (its ``training.json``)."""
    import json

    notes = []
    note = target.target.weights_note or getattr(target.handle, "weights_note", "")
    if note:
        notes.append(f"model weights: {note}; SAEs trained on the original checkpoint fit these activations worse "
                     "than their release reports (read the FVE and L0 measured here on the prompts studied)")
    for x in saes:
        rec = Path(str(x.source)) / "training.json"
        try:
            info = json.loads(rec.read_text(encoding="utf-8"))
            hold = info["holdout"]
            notes.append(f"{x.site}: trained by interp-af sae train on these (dequantised) weights' activations: "
                         f"{info['n_train_tokens']} tokens of {info['n_prompts']} prompts, held-out FVE "
                         f"{hold['fve']:.3f}, L0 {hold['l0']:.1f} (training record: {rec})")
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return tuple(notes)


def load(stage_dir: Path) -> Any:
    from interp_af.analysis.sae.study import SAEStudy

    return SAEStudy.load(stage_dir)


def summarize(study: Any) -> SaeSummary:
    full = study.summary()
    site, entry = next(iter(full["saes"].items()))
    pos = "metric" if "metric" in entry["positions"] else "decision"
    q, at = entry["quality"], entry["positions"].get(pos, {})
    abl = at.get("ablation", {})
    base = abl.get("gap_baseline") or float("nan")
    top = at.get("top_gap_features")
    return rounded(SaeSummary(
        site=site, position=pos, n_prompts=full["n_prompts"], fve=q["fve"], l0=q["l0"],
        dead_fraction=q["dead_fraction"], splice_err_max_abs=q["splice_err_max_abs"],
        top_feature=(top or [None])[0], top_features=tuple(top) if top is not None else None,
        gap_baseline=abl.get("gap_baseline"), delta_gap_ablation=abl.get("delta_gap_chosen"),
        delta_gap_random_mean=abl.get("delta_gap_random_mean"),
        gap_closed_by_ablation=-abl["delta_gap_chosen"] / base if abl else None,
        random_gap_closed_by_ablation=-abl["delta_gap_random_mean"] / base if abl else None,
        layer=int(site.rsplit(".", 1)[-1]) if "." in site else None, fit_notes=tuple(full.get("fit_notes", ()))))


CAPTIONS = {
    "attribution": ("SAE features: attribution of the compliance metric to features (and the SAE error node) at "
                    "one position, per arm, each feature labelled by its top context.",
                    "Features whose attribution differs between the arms are candidates for 'being trained'."),
    "ablation": ("The gap change when the top gap-attributed features are ablated vs as many random features.",
                 "A feature set that carries 'being trained' changes the gap far more than random features do."),
}


def report(study: Any, summary: SaeSummary) -> Contribution:
    from interp_af.report.sae import ablation_figure, attribution_bars

    figs = []
    for site, e in study.entries.items():
        arms = e.differential.arms
        pos = summary.position if summary.position in e.picks else next(iter(e.picks))
        figs.append(FigureBlock.build(
            f"sae_attribution_{site}", f"SAE feature attribution ({site}, {pos})",
            lambda e=e, pos=pos, arms=arms: attribution_bars(e.attribution, pos, k=study.config.top_n, arms=arms,
                                                             contexts=e.contexts),
            what=CAPTIONS["attribution"][0], evidence=CAPTIONS["attribution"][1], source=f"sae/{site}/attribution"))
        if e.ablations:
            ivs = list(e.ablations.values())
            figs.append(FigureBlock.build(
                f"sae_ablation_{site}", f"SAE feature ablation ({site}, at {', '.join(e.ablations)})",
                lambda ivs=ivs: ablation_figure(ivs), what=CAPTIONS["ablation"][0], evidence=CAPTIONS["ablation"][1],
                source=f"sae/{site}/ablation_*.json"))
    keys = {b.key for b in figs}
    attr_key = f"sae_attribution_{summary.site}"
    findings = [Finding("does the SAE fit these prompts?", f"fraction of variance explained ({summary.site}; L0 "
                        f"{summary.l0:.1f})", summary.fve, None, ".3f", attr_key if attr_key in keys else None,
                        note="; ".join(summary.fit_notes))]
    if summary.gap_closed_by_ablation is not None:
        key = f"sae_ablation_{summary.site}" if f"sae_ablation_{summary.site}" in keys else None
        findings.append(Finding("do the top features carry the gap?", f"fraction of the gap closed by ablating "
                                f"{len(summary.top_features or ())} features at {summary.position}",
                                summary.gap_closed_by_ablation, None, ".0%", key))
        findings.append(Finding("do random features do as much?", "mean fraction closed by random sets",
                                summary.random_gap_closed_by_ablation, None, ".0%", key))
    return Contribution((Section("sae", "SAE features", tuple(figs), notes=tuple(summary.fit_notes)),),
                        tuple(findings))


def _run(ctx: StageContext) -> Any:
    study = sae(ctx.target, ctx.config, progress=ctx.progress)
    study.save(ctx.out)
    return study


STAGE = register_stage(StageSpec(
    name="sae", config=SaeConfig, run=_run, load=load, summarize=summarize, summary_type=SaeSummary,
    report=report, description="SAE quality, feature attribution, and ablation of the top features vs random"))
