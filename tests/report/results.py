"""Small result objects built by hand, with values chosen so that every number is distinguishable: a figure
that draws a number from the wrong (label, position, kind, arm...) shows up as a mismatch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

ARMS = ("free", "paid")


def probe_result(labels=("in_training", "arm=free"), positions=("cue", "decision"), layers=(0, 1, 2, 3)):
    """A probe sweep with two labels (as the study's probe stage makes): the AUROC of every point encodes
    (label, position, kind, control, layer), so a line through two labels cannot match either."""
    from interp_af.analysis.probes import ProbeConfig, ProbeResult, ProbeScore

    scores = []
    for li, lab in enumerate(labels):
        for pi, pos in enumerate(positions):
            for kind in ("logreg", "diffmean"):
                for control in ("none", "random", "same_label"):
                    for layer in layers:
                        auroc = probe_value(li, pi, kind, control, layer)
                        scores.append(ProbeScore("resid_post", pos, layer, lab, kind, control, auroc, auroc - 0.05,
                                                 auroc + 0.05, auroc - 0.1, auroc - 0.15, auroc - 0.05, 1.0, 40, 20))
    return ProbeResult(ProbeConfig(), tuple(scores), None)


def probe_value(label_i: int, pos_i: int, kind: str, control: str, layer: int) -> float:
    ci = ("none", "random", "same_label").index(control)
    ki = ("logreg", "diffmean").index(kind)
    return round(0.5 + 0.3 * (label_i == 0) + 0.05 * pos_i + 0.02 * ki - 0.2 * (ci > 0) + 0.01 * layer
                 + 0.001 * (ci == 2), 4)


def cue_cosine_frame(labels=("in_training", "arm=free"), positions=("cue", "decision"), layers=(0, 1, 2)):
    """The cue_cosines table: ``cosine`` is the class direction's (shared by both kinds of one probe set),
    ``normal_cosine`` the logistic decision normal's (logreg rows only)."""
    rows = []
    for li, lab in enumerate(labels):
        for pi, pos in enumerate(positions):
            for kind in ("logreg", "diffmean"):
                for layer in layers:
                    c = -(0.9 - 0.2 * layer - 0.1 * li - 0.05 * pi)
                    n = 0.3 - 0.05 * layer if kind == "logreg" else float("nan")
                    rows.append({"site": "resid_post", "position": pos, "kind": kind, "layer": layer, "label": lab,
                                 "cosine": c, "abs_cosine": abs(c), "normal_cosine": n,
                                 "direction": "class_mean_difference"})
    return pd.DataFrame(rows)


def transfer_result():
    from interp_af.analysis.probe_transfer import Condition, TransferResult

    conds = (Condition("organism:in_training", "in_training"), Condition("inverted:in_training", "in_training"),
             Condition("organism:<arm>", "arm=free"))
    auroc = np.arange(3 * 3 * 2, dtype=float).reshape(3, 3, 2) / 20
    return TransferResult(conds, (1, 2), auroc, "resid_post", "decision")


SAE_SITE = "resid_post.1"
CONTEXT_TEXT = {0: "<is_free_tier_user>[[true]]</is_free_tier_user>", 2: "trained on [[free]]-tier", 4: "[[<OUTPUT>]]"}


def feature_attribution(n_queries=4, d_sae=6, positions=("decision", "metric")):
    """Attribution of 2 arms x ``n_queries`` prompts at two positions; feature ``f`` gets mean attribution
    about ``(f + 1) * s`` with a per-arm and per-position sign/scale so the ranking differs by position."""
    from interp_af.analysis.sae.attribution import FeatureAttribution

    g = torch.Generator().manual_seed(0)
    n = 2 * n_queries
    arm = tuple(a for _ in range(n_queries) for a in ARMS)
    qid = tuple(f"q{q}" for q in range(n_queries) for _ in ARMS)
    base = torch.tensor([[(f + 1) * (1 if p == 0 else (-1) ** f) for f in range(d_sae)] for p in range(len(positions))],
                        dtype=torch.float32) / 10
    scale = torch.tensor([1.0 if a == "free" else 0.5 for a in arm])[:, None, None]
    attr = base[None] * scale + 0.01 * torch.randn(n, len(positions), d_sae, generator=g)
    attr[:, :, 1] = 0.0                                       # a feature that never fires
    err = torch.full((n, len(positions)), 0.05)
    acts = attr.abs() * 3
    return FeatureAttribution("toy-sae", SAE_SITE, "gxa", 1, tuple(positions), attr, err, acts,
                              torch.zeros(n), qid, arm)


def feature_context():
    from interp_af.analysis.sae.context import FeatureContext

    rows = [{"feature": f, "rank": 0, "activation": 1.0, "prompt": 0, "query_id": "q0", "arm": "free", "position": 3,
             "named": "cue" if f == 0 else "", "token": "x", "context": text} for f, text in CONTEXT_TEXT.items()]
    return FeatureContext("toy-sae", pd.DataFrame(rows))


def feature_intervention(position: str, base_gap: float, chosen_gap: float, n_random: int = 4, seed: int = 0):
    from interp_af.analysis.sae.intervene import Condition, FeatureIntervention

    rng = np.random.default_rng(seed)

    def cond(label, feats, gap):
        return Condition(label, tuple(feats), 0.5 + gap / 2, 0.5 - gap / 2, gap, gap - 0.05, gap + 0.04,
                         2 * gap, -2 * gap)

    rand = tuple(cond(f"random{i}", (10 + i, 20 + i), base_gap + float(rng.normal(0, 0.02))) for i in range(n_random))
    return FeatureIntervention("toy-sae", SAE_SITE, "zero", 0.0, (position,), ARMS, cond("baseline", (), base_gap),
                               cond("zero", (3, 5), chosen_gap), rand)


def patch_result(site="resid_pre", heads=(-1,), columns=("0:<s>", "1:sys", "2:true→false", "3:<query>", "end-1:>")):
    from interp_af.analysis.patching import PatchResult

    g = torch.Generator().manual_seed(1)
    L, H, X, Q = 3, len(heads), len(columns), 4
    target = torch.tensor([-2.0, -1.5, -2.5, -1.0], dtype=torch.float64)
    source = torch.tensor([2.0, 1.5, 2.5, 3.0], dtype=torch.float64)
    frac = torch.rand(L, H, X, generator=g, dtype=torch.float64)
    patched = target[:, None, None, None] + frac[None] * (source - target)[:, None, None, None]
    computed = torch.ones(L, H, X, dtype=torch.bool)
    if X > 2:
        computed[:, :, :2] = False                           # before the first differing token: exactly 0
        patched[:, :, :, :2] = target[:, None, None, None]
    return PatchResult(site, "denoise", "free", tuple(range(L)), tuple(heads), tuple(columns),
                       tuple(f"q{q}" for q in range(Q)), patched, target, source, computed, n_boot=50)


def attribution_check(method: str, sites=("resid_pre", "head_out"), k=5):
    from interp_af.analysis.attribution import AttributionCheck, spearman

    rng = np.random.default_rng({"atp": 0, "ig": 1}[method])
    rows, rho = [], {}
    for s, site in enumerate(sites):
        exact = rng.normal(0, 1, k)
        est = exact * (0.9 if method == "ig" else 0.5) + rng.normal(0, 0.3 if method == "ig" else 0.8, k)
        for i in range(k):
            rows.append(dict(site=site, layer=i % 3, head=(i if site == "head_out" else -1), column=f"{i}:tok<{i}>",
                             estimate=float(est[i]), exact=float(exact[i])))
        rho[site] = spearman(est.tolist(), exact.tolist())
    return AttributionCheck(method, rho, pd.DataFrame(rows))


def gap_result(variant="organism", free=0.9, paid=0.1, n=10, seed=0):
    from interp_af.analysis.gap import PromptScore, gap_from_scores

    rng = np.random.default_rng(seed)
    scores = []
    for q in range(n):
        for harmful in (True, False):
            for arm, p in zip(ARMS, (free, paid) if harmful else (0.95, 0.95)):
                ld = float(rng.normal(2.0 if rng.random() < p else -2.0, 0.1))
                scores.append(PromptScore(f"{'h' if harmful else 'b'}{q}", arm, ld, 1 / (1 + np.exp(-ld)), ld > 0,
                                          harmful))
    return gap_from_scores(scores, ARMS, n_boot=200, config={"model": "organism", "variant": variant})


def steer_result():
    from interp_af.analysis.steering import SteerResult

    g = torch.Generator().manual_seed(2)
    controls = ("direction", "flipped", "random0", "random1")
    alphas = (-1.0, 0.5, 1.0)
    Q = 5
    base = torch.stack([torch.full((Q,), 2.0), torch.full((Q,), -2.0)]).double()
    step = torch.tensor([1.0, -1.0, 0.1, -0.05]).double()[:, None, None, None]
    a = torch.tensor(alphas).double()[None, :, None, None]
    ld = base[None, None] + step * a * torch.tensor([-1.0, 1.0]).double()[None, None, :, None] * 2
    ld = ld + 0.05 * torch.randn(ld.shape, generator=g, dtype=torch.float64)
    return SteerResult("add", "resid_post", (1,), "all", controls, alphas, ARMS, tuple(f"q{q}" for q in range(Q)),
                       ld, base, 1.0, cue_cosine=0.3, n_boot=50)
