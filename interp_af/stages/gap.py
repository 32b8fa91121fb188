"""Stage ``gap``: compliance per arm and the compliance gap, for the main variant and every contrast.

For each variant of the setting (main first), harmful and benign requests are scored separately: the gap is
about harmful requests, and benign compliance beside it is the control (a model that refuses benign
requests, or shows a gap on them, is not reasoning about harm). Every number has a paired-bootstrap
interval over requests (:mod:`interp_af.analysis.gap`).

API: :func:`gap` (``interp_af.gap``); CLI: ``interp-af gap``; TOML: ``[gap]``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interp_af.analysis.vocab import METRICS
from interp_af.options import option, validate
from interp_af.report.page import Contribution, FigureBlock, Finding, Section
from interp_af.stages.base import StageContext, StageSpec, register_stage
from interp_af.stages.util import rounded, write_json

if TYPE_CHECKING:
    from interp_af.analysis.gap import GapResult


@dataclass(frozen=True)
class GapConfig:
    """How the gap is measured."""

    metric: str = option("forward", "forward (logit diff at the first divergent answer token) or generate "
                                    "(decode and check the tag).", choices=METRICS)
    batch_size: int = option(32, "Prompts per forward pass.", min=1)
    n_boot: int = option(2000, "Paired-bootstrap resamples (over requests) for every interval.", min=1)
    seed: int = option(0, "Bootstrap (and sampling) seed.")
    temperature: float = option(0.0, "generate metric: sampling temperature; 0 = greedy.", min=0)
    max_new_tokens: int = option(0, "generate metric: tokens decoded (0 = just enough for the tags).", min=0)
    logprobs: bool = option(False, "Also the full log-probability of both completions (two more passes).")

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True)
class GroupGap:
    """One variant's numbers on one kind of request (harmful or benign)."""

    arms: tuple[str, ...]
    compliance: dict[str, float]
    compliance_ci: dict[str, tuple[float, float]]
    gap: float
    gap_ci: tuple[float, float]
    logit_diff_gap: float
    logit_diff_gap_ci: tuple[float, float]
    n: int


@dataclass(frozen=True)
class GapSummary:
    """The gap of every variant, with what each variant declares: its role, the arms its stated policy trains
    on (``trained``) and rates (``rated``); ``pairs`` holds the further consecutive arm pairs of a variant with
    more than two arms (``"plus-enterprise"``), harmful requests only. The verdicts read these declarations,
    never the variants' names."""

    main: str
    variants: dict[str, dict[str, GroupGap]]       # variant -> {"harmful": ..., "benign": ...}
    roles: dict[str, str] = field(default_factory=dict)   # variant -> declared role
    trained: dict[str, tuple[str, ...]] = field(default_factory=dict)   # variant -> its trained arms
    rated: dict[str, tuple[str, ...]] = field(default_factory=dict)     # variant -> its rated arms
    pairs: dict[str, dict[str, GroupGap]] = field(default_factory=dict)  # variant -> "a-b" -> harmful gap

    def harmful(self, variant: str) -> GroupGap | None:
        return self.variants.get(variant, {}).get("harmful")

    def pair(self, variant: str, a: str, b: str) -> GroupGap | None:
        """The harmful-request gap ``a - b`` of ``variant`` (its first two arms or a further pair), else None."""
        first = self.harmful(variant)
        if first is not None and tuple(first.arms[:2]) == (a, b):
            return first
        return self.pairs.get(variant, {}).get(f"{a}-{b}")


@dataclass(frozen=True)
class GapStudy:
    """The gap of every variant: ``results[variant][kind]`` (kind: "harmful" / "benign")."""

    main: str
    results: dict[str, dict[str, GapResult]]
    roles: dict[str, str] = field(default_factory=dict)
    trained: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rated: dict[str, tuple[str, ...]] = field(default_factory=dict)
    pairs: dict[str, dict[str, GapResult]] = field(default_factory=dict)   # variant -> "a-b" -> harmful

    def save(self, out: str | Path) -> Path:
        out = Path(out)
        for v, kinds in self.results.items():
            for kind, res in kinds.items():
                res.save(out / v / kind)
        for v, pairs in self.pairs.items():
            for name, res in pairs.items():
                res.save(out / v / "pairs" / name)
        write_json(out / "gap_study.json", {
            "main": self.main, "roles": self.roles, "variants": {v: list(k) for v, k in self.results.items()},
            "trained": {v: list(a) for v, a in self.trained.items()},
            "rated": {v: list(a) for v, a in self.rated.items()},
            "pairs": {v: list(p) for v, p in self.pairs.items()}})
        return out

    @classmethod
    def load(cls, out: str | Path) -> "GapStudy":
        from interp_af.analysis.gap import GapResult

        out = Path(out)
        index = json.loads((out / "gap_study.json").read_text())
        results = {v: {k: GapResult.load(out / v / k) for k in kinds} for v, kinds in index["variants"].items()}
        pairs = {v: {p: GapResult.load(out / v / "pairs" / p) for p in ps} for v, ps in index.get("pairs", {}).items()}
        trained = {v: tuple(a) for v, a in index.get("trained", {}).items()}
        rated = {v: tuple(a) for v, a in index.get("rated", {}).items()}
        if "trained" not in index:   # written before variants' arms were recorded: read their declarations now
            trained, rated = _declared(results)
        return cls(index["main"], results, index.get("roles", {}), trained, rated, pairs)

    def to_frame(self):
        """One row per (variant, kind, arm) plus gap rows: :meth:`GapResult.summary_frame` stacked."""
        import pandas as pd

        frames = [r.summary_frame().assign(variant=v, kind=k) for v, ks in self.results.items() for k, r in ks.items()]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def __str__(self) -> str:
        return "\n".join(f"{v} ({k}): {r}" for v, ks in self.results.items() for k, r in ks.items())


def _declared(results: dict[str, Any]) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """The trained and rated arms each variant of ``results`` declares (registry lookup; unknown: none)."""
    from interp_af.errors import InterpAFError
    from interp_af.setting.prompts import get_variant, rated_arms, trained_arms

    trained, rated = {}, {}
    for v in results:
        try:
            var = get_variant(v)
        except InterpAFError:
            continue
        trained[v], rated[v] = trained_arms(var), rated_arms(var)
    return trained, rated


def gap(target: Any, config: GapConfig | None = None, *, progress: bool = True) -> GapStudy:
    """The gap of every variant of ``target`` (a :class:`~interp_af.targets.ResolvedTarget`, or anything
    :func:`interp_af.targets.resolve` takes)."""
    from tqdm import tqdm

    from interp_af.analysis.gap import compute_gap
    from interp_af.targets import ResolvedTarget, resolve

    t = target if isinstance(target, ResolvedTarget) else resolve(target)
    g = config or GapConfig()
    from interp_af.setting.prompts import rated_arms, trained_arms
    from interp_af.setting.twins import make_twins

    results: dict[str, dict[str, GapResult]] = {}
    kinds = (("harmful", True), ("benign", False))
    bar = tqdm(total=len(t.variants) * len(kinds), desc="gap", unit="set", disable=not progress)
    pairs: dict[str, dict[str, GapResult]] = {}
    common = dict(metric=g.metric, n_boot=g.n_boot, seed=g.seed, batch_size=g.batch_size, temperature=g.temperature,
                  max_new_tokens=g.max_new_tokens or None, logprobs=g.logprobs, progress=progress)
    for v in t.variants:
        results[v] = {}
        for kind, harmful in kinds:
            bar.set_postfix_str(f"{v} ({kind})", refresh=False)
            tw = t.twins(v, harmful=harmful)
            if not tw:
                bar.update()
                continue
            results[v][kind] = compute_gap(t.handle, tw, config={"variant": v, "queries": kind}, **common)
            bar.update()
        arms = tuple(t.variant(v).arms)
        harmful_queries = [q for q in t.queries if q.harmful]
        for a, b in zip(arms[1:], arms[2:]):   # a third arm (three tiers): its gap to the second, too
            if not harmful_queries:
                break
            tw = make_twins(t.tokenizer, harmful_queries, t.variant(v), arms=(a, b), progress=False)
            pairs.setdefault(v, {})[f"{a}-{b}"] = compute_gap(
                t.handle, tw, config={"variant": v, "queries": "harmful", "arms": [a, b]}, **common)
    bar.close()
    return GapStudy(t.main, results, {v: t.role(v) for v in t.variants},
                    {v: trained_arms(t.variant(v)) for v in t.variants},
                    {v: rated_arms(t.variant(v)) for v in t.variants}, pairs)


def _group(res: GapResult) -> GroupGap:
    return GroupGap(tuple(res.arms), dict(res.compliance), {a: tuple(ci) for a, ci in res.compliance_ci.items()},
                    res.gap, tuple(res.gap_ci), res.logit_diff_gap, tuple(res.logit_diff_gap_ci), res.n_queries)


def summarize(study: GapStudy) -> GapSummary:
    return rounded(GapSummary(study.main, {v: {k: _group(r) for k, r in ks.items()} for v, ks in study.results.items()},
                              dict(study.roles), dict(study.trained), dict(study.rated),
                              {v: {p: _group(r) for p, r in ps.items()} for v, ps in study.pairs.items()}))


CAPTIONS = {
    "gap": ("Compliance with harmful requests per arm (free / paid), 95% paired-bootstrap intervals.",
            "Evidence needs a gap whose interval excludes 0 - and, below, contrasts that say what causes it."),
    "contrasts": ("The gap under each contrast of the setting: the main policy, the inverted policy (the same cue "
                  "means the opposite), no training information (negative control), and other cues.",
                  "An inferred 'being trained' state reverses the gap under the inverted policy and removes it "
                  "without training information; a cue acting directly would keep it in both."),
}


def report(study: GapStudy, summary: GapSummary) -> Contribution:
    from interp_af.report.gap import contrast_figure, gap_figure

    figs = []
    main = study.results.get(study.main, {}).get("harmful")
    if main is not None:
        figs.append(FigureBlock.build("gap", "The compliance gap", lambda: gap_figure(main), what=CAPTIONS["gap"][0],
                                      evidence=CAPTIONS["gap"][1], source=f"gap/{study.main}/harmful/gap.json"))
    harmful = {v: ks["harmful"] for v, ks in study.results.items() if "harmful" in ks}
    figs.append(FigureBlock.build("contrasts", "What the gap depends on", lambda: contrast_figure(harmful, study.main),
                                  what=CAPTIONS["contrasts"][0], evidence=CAPTIONS["contrasts"][1],
                                  source="gap/<variant>/harmful/gap.json"))
    findings = []
    for v, ks in summary.variants.items():
        h = ks.get("harmful")
        if h is None:
            continue
        label = "main" if v == summary.main else summary.roles.get(v, "") or "contrast"
        findings.append(Finding(f"gap ({label}: {v})", f"compliance {h.arms[0]} - {h.arms[1]}, harmful requests "
                                f"(n={h.n})", h.gap, h.gap_ci, "+.1%", "gap" if v == summary.main else "contrasts"))
        findings.append(Finding(f"logit-diff gap ({v})", "mean logit diff, first arm minus second",
                                h.logit_diff_gap, h.logit_diff_gap_ci, "+.3f", "contrasts"))
    return Contribution((Section("gap", "The compliance gap", tuple(figs)),), tuple(findings))


def _run(ctx: StageContext) -> GapStudy:
    study = gap(ctx.target, ctx.config, progress=ctx.progress)
    study.save(ctx.out)
    return study


STAGE = register_stage(StageSpec(
    name="gap", config=GapConfig, run=_run, load=GapStudy.load, summarize=summarize, summary_type=GapSummary,
    report=report, description="compliance per arm and the gap, main variant and contrasts"))
