"""A report page of every figure kind, from the hand-built results, with hostile strings where a real run
puts user input (queries, tokens, paths): shared by the page test and the browser test."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from interp_af.report.gap import contrast_figure, gap_figure
from interp_af.report.page import FigureBlock, Finding, PageHeader, Section, render_page
from interp_af.report.patching import attribution_figure, patch_heatmap
from interp_af.report.probes import auroc_figure, cosine_figure
from interp_af.report.sae import ablation_figure, attribution_bars
from interp_af.report.steering import dose_response

from . import results as r

HOSTILE = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'
HEADER = PageHeader(model="organism <tiny>", weights_hash="ab12" * 16, target="compliance gap free - paid",
                    config_file='/tmp/run "a"&b/<study>.toml', seeds={"all": 0, "probes": 3}, version="0.1.0",
                    commit=None, date="2026-12-01T10:00:00Z", machine="host (Linux x86_64, 2 CPUs)", device="cpu",
                    extra=(("note", HOSTILE),))


@dataclass(frozen=True)
class Row:
    explanation: str
    test: str
    measured: str
    margin: str
    verdict: str


VERDICT_ROWS = (
    Row("The cue token acts directly on the answer", "training information removed", "gap +1% [-3%, +5%]",
        "interval contains 0", "ruled out"),
    Row('An inferred "in training" state', "inverted policy: the gap must reverse", "gap -60% [-70%, -50%]",
        "excludes 0 by 50 pp", "supported"),
    Row("A direction carries the gap", "steering vs random directions", "closed 80% vs random 5%", "16x",
        "not supported"),
    Row("Being rated drives the gap", "three tiers", "not run", "", "not tested"),
    Row("Query text " + HOSTILE, "-", "-", "-", "inconclusive"),
    Row("Anything at all", "-", "gap +0% [-2%, +2%]", "-", "no gap to explain"),
)


def sections() -> list[Section]:
    gaps = {"organism": r.gap_result(seed=2), "organism-inverted": r.gap_result("organism-inverted", 0.1, 0.9, seed=1)}
    return [
        Section("gap", "The compliance gap", (
            FigureBlock("gap", "Compliance per arm", gap_figure(gaps["organism"]), "Compliance per arm.",
                        "A gap whose interval excludes 0.", source="gap/organism/harmful/gap.json"),
            FigureBlock("contrasts", "What the gap depends on", contrast_figure(gaps, "organism"),
                        "The gap under each contrast.", "It reverses under the inverted policy."),
        )),
        Section("probes", "Probes", (
            FigureBlock("auroc", "Probe AUROC by layer", auroc_figure(r.probe_result()), "AUROC by layer.",
                        "High at the decision, controls near 0.5.", source="probes/probes.scores.json"),
            FigureBlock("cue_cosine", "Probe directions vs the cue token", cosine_figure(r.cue_cosine_frame()),
                        "Cosine with the cue embedding difference.", "A falling curve."),
        ), notes=("leakage: none", "query: " + HOSTILE)),
        Section("patching", "Activation patching", (
            FigureBlock("patch_resid", "Residual stream",
                        patch_heatmap(r.patch_result(columns=("0:<s>", "1:" + HOSTILE, "2:true→false", "3:<query>",
                                                              "end-1:>"))), "Layer x position.",
                        "Later positions light up at middle layers."),
            FigureBlock("attribution", "Attribution patching vs exact",
                        attribution_figure([r.attribution_check("atp"), r.attribution_check("ig")]),
                        "AtP and IG against exact patching.", "High rank correlation."),
            FigureBlock.build("broken", "A figure whose result is missing", lambda: 1 / 0, what="-", evidence="-"),
        )),
        Section("steering", "Steering", (
            FigureBlock("steering", "Dose-response", dose_response(r.steer_result()), "Gap closed vs alpha.",
                        "Far beyond random directions."),
        )),
        Section("sae", "SAE features", (
            FigureBlock("sae_bars", "SAE feature attribution (metric)",
                        attribution_bars(r.feature_attribution(), "metric", contexts=r.feature_context()),
                        "Top features by attribution.", "Features that carry being trained."),
            FigureBlock("sae_ablation", "SAE feature ablation",
                        ablation_figure([r.feature_intervention("decision", 0.826, 0.826, seed=1),
                                         r.feature_intervention("metric", 0.8, 0.56, seed=2)]),
                        "Gap closed by ablating the top features, by position.", "Far more than random sets."),
            FigureBlock("sae_scatter", "Not produced in this run", None, "-", "-"),
        )),
    ]


N_FIGURES = 9      # figure blocks above that hold a figure (the broken and the absent one do not)

FINDINGS = (
    Finding("Is there a compliance gap?", "gap, free - paid (harmful requests)", 0.8, (0.7, 0.9), "+.1%", "gap"),
    Finding("Is being trained decodable?", "probe AUROC, in_training @ decision, layer 2", 0.98, (0.95, 1.0),
            figure="auroc"),
    Finding("Where does patching restore the decision?", "top site", "resid_pre.2 @ 12:" + HOSTILE,
            figure="patch_resid"),
    Finding("Do the SAE's top features carry the gap?", "fraction of the gap closed at metric", 0.3, (0.1, 0.5),
            ".0%", "sae_ablation", note="5 features, vs 10 random sets"),
    Finding("Unmeasured", "steering", None),
)


@functools.cache
def page(js: str) -> str:
    """The sample page (cached: several tests read the same one)."""
    return render_page(HEADER, VERDICT_ROWS, FINDINGS, sections(), js=js)
