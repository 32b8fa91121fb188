"""Stage ``probes``: is "being trained" linearly readable, beyond the cue token?

On a capture (the ``capture`` stage's, or any folder ``interp-af capture`` wrote), for each label:

- ``in_training`` is probed over the variants whose policy is stated (so "in training" is defined), which
  pools the main policy with its inverted contrast: the same cue token then means "trained" in one and "not"
  in the other, so only a representation beyond the token can separate it;
- ``arm`` is probed on the main variant alone, as ``arm=<its first arm>`` (other variants name their arms
  differently);
- any other label (a metadata column, ``column=value``) on the rows ``where`` keeps.

Every probe runs with random-label and same-label controls, folds split by query
(:mod:`interp_af.analysis.probes`); the cosine of every direction with the cue-token embedding difference and,
when an inverted-policy variant was captured, the transfer matrix (train under one policy, test under the
other) come beside it.

API: :func:`probe` (``interp_af.probe``); CLI: ``interp-af probe CAPTURE``; TOML: ``[probes]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interp_af.analysis.vocab import CONTROLS, KINDS
from interp_af.options import option, validate
from interp_af.report.page import Contribution, FigureBlock, Finding, Section
from interp_af.stages.base import StageContext, StageSpec, register_stage
from interp_af.stages.util import rounded


@dataclass(frozen=True)
class ProbesConfig:
    """Which probes, on which rows, how validated."""

    labels: tuple[str, ...] = option(("in_training", "arm"), "Labels to probe: in_training, arm, or any metadata "
                                     "column / COLUMN=VALUE; the first is the headline.", min_items=1)
    site: str = option("", "Captured site to probe ('' = the first captured).")
    positions: tuple[str, ...] = option((), "Captured positions to probe (() = all).")
    where: str = option("", "A pandas query selecting rows for every label ('' = the label's default rows).")
    kinds: tuple[str, ...] = option(KINDS, "Probe kinds: logreg (scores) and diffmean (the class direction).",
                                    choices=KINDS, min_items=1)
    folds: int = option(5, "k of the k-fold split by query.", min=2)
    n_boot: int = option(500, "Query-bootstrap replicates for the intervals (0 = none).", min=0)
    controls: bool = option(True, "Run the random-label and same-label controls.")
    transfer: bool = option(True, "Train under one policy and test under the inverted one (when captured).")
    conditions: tuple[str, ...] = option((), "Custom transfer conditions NAME:LABEL[:WHERE] (two or more; ';' "
                                             "between them on the command line) instead of the automatic policy "
                                             "transfer.", sep=";")
    jobs: int = option(1, "Processes over layers (-1 = all cores).", min=-1)
    device: str = option("cpu", "cpu (scikit-learn) or cuda (all layers in one batched torch solve).")
    seed: int = option(0, "Seed of the folds, controls and bootstrap.")

    def __post_init__(self) -> None:
        from interp_af.analysis.probe_transfer import parse_condition
        from interp_af.errors import InterpAFError

        validate(self)
        if self.jobs == 0:
            raise InterpAFError("ProbesConfig.jobs = 0: use a positive number of processes, or -1 for all cores")
        for c in self.conditions:  # parsed before the long fit: a typo fails at once
            parse_condition(c)
        if len(self.conditions) == 1:
            raise InterpAFError(f"ProbesConfig.conditions = {self.conditions!r}: a transfer matrix needs at least two")


@dataclass(frozen=True)
class BestProbe:
    label: str
    layer: int
    position: str
    auroc: float
    auroc_ci: tuple[float, float]
    control_auroc: float | None


@dataclass(frozen=True)
class ProbesSummary:
    labels: tuple[str, ...]
    variants: tuple[str, ...]
    leakage: tuple[str, ...]
    notes: tuple[str, ...]
    best: BestProbe | None = None
    cue_cosine: tuple[dict[str, Any], ...] = ()
    transfer: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class ProbeStudy:
    """Every probe score and direction (``result``), the cue-embedding cosines (a DataFrame), the transfer matrix
    (or None), which label is the headline and which variants the in_training probe pooled."""

    result: Any                      # interp_af.analysis.probes.ProbeResult
    cue_cosine: Any = None           # pandas DataFrame
    transfer: Any = None             # interp_af.analysis.probe_transfer.TransferResult
    headline: str = "in_training"
    variants: tuple[str, ...] = ()
    labels: tuple[str, ...] = field(default=())

    def save(self, out: str | Path) -> Path:
        import json

        out = Path(out)
        self.result.save(out)
        if self.cue_cosine is not None:
            self.cue_cosine.to_csv(out / "cue_cosine.csv", index=False)
        if self.transfer is not None:
            self.transfer.save(out / "transfer")
        (out / "probe_study.json").write_text(json.dumps({"headline": self.headline, "variants": list(self.variants),
                                                          "labels": list(self.labels)}))
        return out

    @classmethod
    def load(cls, out: str | Path) -> "ProbeStudy":
        import json

        import pandas as pd

        from interp_af.analysis.probe_transfer import TransferResult
        from interp_af.analysis.probes import ProbeResult

        out = Path(out)
        meta = json.loads((out / "probe_study.json").read_text())
        cos = pd.read_csv(out / "cue_cosine.csv") if (out / "cue_cosine.csv").exists() else None
        tr = TransferResult.load(out / "transfer") if (out / "transfer").exists() else None
        return cls(ProbeResult.load(out), cos, tr, meta["headline"], tuple(meta["variants"]), tuple(meta["labels"]))


def _stated(meta: Any) -> list[str]:
    """The variants (in capture order: main first) whose stated policy trains one of the arms."""
    variants = list(dict.fromkeys(meta["variant"]))
    return [v for v in variants if meta.loc[meta["variant"] == v, "in_training"].astype(bool).any()]


def _inverted(stated: list[str], main: str) -> list[str]:
    """The stated-policy contrasts that declare the inverted role."""
    from interp_af.setting.prompts import get_variant, variant_role

    out = []
    for v in stated:
        if v == main:
            continue
        try:
            if variant_role(get_variant(v)) == "inverted":
                out.append(v)
        except Exception:  # noqa: BLE001 - a capture of a variant this install does not know: not a contrast
            continue
    return out


def probe(capture: Any, config: ProbesConfig | None = None, *, progress: bool = True) -> ProbeStudy:
    """Probe a capture (a :class:`~interp_af.acts.store.Capture` or its folder); see the module docstring."""
    from tqdm import tqdm

    from interp_af.analysis.probe_transfer import Condition, cue_cosines, parse_condition, transfer_capture
    from interp_af.analysis.probes import ProbeConfig, merge, probe_capture
    from interp_af.acts.store import open_capture
    from interp_af.errors import InterpAFError

    p = config or ProbesConfig()
    cap = open_capture(capture) if isinstance(capture, (str, Path)) else capture
    site = p.site or cap.sites[0]
    if site not in cap.sites:
        raise InterpAFError(f"probes site {site!r} was not captured; captured: {', '.join(cap.sites)}")
    cfg = ProbeConfig(kinds=p.kinds, n_folds=p.folds, n_boot=p.n_boot, controls=CONTROLS if p.controls else (),
                      seed=p.seed, n_jobs=p.jobs, device=p.device)
    meta = cap.meta()
    main = str(meta["variant"].iloc[0])   # the capture stage renders the main variant first
    # "in training" is only defined where a policy is stated: probe on the variants that state one
    stated = _stated(meta)
    arms = {v: tuple(meta.loc[meta["variant"] == v, "arm"].unique()) for v in dict.fromkeys(meta["variant"])}
    first_arm = arms[main][0]

    def spec(label: str) -> tuple[str, str | None]:
        if p.where:
            return label, p.where
        # "arm" is the tier the prompt shows; other variants may name their arms differently, so the arm
        # probe runs on the main variant only, as "arm=<its first arm>"
        if label == "arm":
            return f"arm={first_arm}", f"variant == {main!r}"
        return label, "variant in " + repr(stated)

    # one probe_capture per (label, position): the same probes as one call per label (positions are probed
    # independently), in steps small enough for a progress bar that moves
    jobs = [(lab, w, pos) for lab, w in map(spec, p.labels) for pos in (p.positions or cap.positions)]
    bar = tqdm(total=len(jobs) + 1, desc="probes", unit="step", disable=not progress)   # + geometry and transfer
    results = []
    for lab, w, pos in jobs:
        bar.set_postfix_str(f"{lab} @ {pos}", refresh=False)
        results.append(probe_capture(cap, lab, site=site, positions=(pos,), where=w, config=cfg))
        bar.update()
    res = merge(results)
    bar.set_postfix_str("cue geometry, transfer", refresh=False)
    cos = None
    if res.probes is not None and len(arms[main]) >= 2:
        try:
            cos = cue_cosines(res.probes, cap.cue_embeddings(), arms=arms[main][:2])
        except InterpAFError:
            cos = None   # the capture holds no cue embedding for an arm (e.g. an arm without a cue)
    tr = None
    inverted = _inverted(stated, main) if main in stated else []
    pos = "decision" if "decision" in cap.positions else cap.positions[-1]
    if p.conditions:
        tr = transfer_capture(cap, [parse_condition(c) for c in p.conditions], site=site, position=pos, config=cfg)
    elif p.transfer and inverted:
        same_arms = set(arms[inverted[0]]) == set(arms[main])
        labels = ("in_training", f"arm={first_arm}") if same_arms else ("in_training",)
        conds = [Condition(f"{v}:{lab}", lab, f"variant == {v!r}") for v in (main, inverted[0]) for lab in labels]
        tr = transfer_capture(cap, conds, site=site, position=pos, config=cfg)
    bar.update()
    bar.close()
    return ProbeStudy(res, cos, tr, spec(p.labels[0])[0], tuple(stated), tuple(p.labels))


def summarize(study: ProbeStudy) -> ProbesSummary:
    res = study.result
    frame = res.to_frame()
    best = None
    if len(frame):
        real = frame[(frame["control"] == "none") & (frame["kind"] == "logreg") & (frame["position"] == "decision")
                     & (frame["label"].astype(str).str.startswith(study.headline))]
        if len(real):
            b = real.sort_values(["auroc", "layer"], ascending=[False, True]).iloc[0]
            ctrl = frame[(frame["control"] != "none") & (frame["label"] == b["label"])]
            best = BestProbe(study.labels[0], int(b["layer"]), "decision", float(b["auroc"]),
                             (float(b["auroc_lo"]), float(b["auroc_hi"])),
                             float(ctrl["auroc"].max()) if len(ctrl) else None)
    cos = tuple(study.cue_cosine.to_dict(orient="records")) if study.cue_cosine is not None else ()
    tr = tuple(study.transfer.to_frame().to_dict(orient="records")) if study.transfer is not None else ()
    return rounded(ProbesSummary(study.labels, study.variants, tuple(res.leakage), tuple(res.notes), best, cos, tr))


CAPTIONS = {
    "auroc": ("Probe AUROC by layer for each label and named position (logistic regression and difference of means), "
              "with random-label and same-label controls.",
              "A within-forward-pass state shows as a high 'in training' AUROC at the decision position while "
              "controls stay near 0.5; a high AUROC at the cue alone is just the token."),
    "cue_cosine": ("Cosine of each probe direction with the embedding difference of the two arms' cue tokens, by layer.",
                   "Near 1 = the direction is the cue token itself; a falling curve means later layers carry "
                   "something other than the token."),
    "transfer": ("Train a probe on one condition (normal or inverted policy, label in_training or arm) and test on another.",
                 "An inferred state generalises across policies for in_training while the arm (tier) probe flips."),
}


def report(study: ProbeStudy, summary: ProbesSummary) -> Contribution:
    from interp_af.report.probes import auroc_figure, cosine_figure, transfer_figure

    figs = [FigureBlock.build("auroc", "Probes", lambda: auroc_figure(study.result, title="Probe AUROC by layer"),
                              what=CAPTIONS["auroc"][0], evidence=CAPTIONS["auroc"][1],
                              source="probes/probes.scores.json")]
    if study.cue_cosine is not None:
        figs.append(FigureBlock.build(
            "cue_cosine", "Probe directions vs the cue token", lambda: cosine_figure(
                study.cue_cosine, title="Cosine of probe directions with the cue-token embedding difference"),
            what=CAPTIONS["cue_cosine"][0], evidence=CAPTIONS["cue_cosine"][1], source="probes/cue_cosine.csv"))
    if study.transfer is not None:
        figs.append(FigureBlock.build(
            "transfer", "Generalisation across policies", lambda: transfer_figure(
                study.transfer, title="Train on one condition, test on another"),
            what=CAPTIONS["transfer"][0], evidence=CAPTIONS["transfer"][1], source="probes/transfer"))
    findings = []
    if summary.best is not None:
        b = summary.best
        findings.append(Finding(f"is '{b.label}' linearly readable?", f"logistic probe AUROC at the decision "
                                f"position, best layer ({b.layer})", b.auroc, b.auroc_ci, ".3f", "auroc"))
        if b.control_auroc is not None:
            findings.append(Finding("do the controls stay at chance?", "highest control AUROC (same label)",
                                    b.control_auroc, None, ".3f", "auroc"))
    return Contribution((Section("probes", "Probes", tuple(figs), notes=summary.leakage + summary.notes),),
                        tuple(findings))


def _run(ctx: StageContext) -> ProbeStudy:
    study = probe(ctx.input("capture"), ctx.config, progress=ctx.progress)
    study.save(ctx.out)
    return study


STAGE = register_stage(StageSpec(
    name="probes", config=ProbesConfig, run=_run, load=ProbeStudy.load, summarize=summarize,
    summary_type=ProbesSummary, report=report, needs=("capture",), uses_target=False,
    description="linear probes per layer and position with controls, cue geometry and policy transfer"))
