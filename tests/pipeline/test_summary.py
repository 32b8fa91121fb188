"""summary.json's headline numbers and the verdict table, from synthetic (typed) stage summaries."""

from interp_af.report.summary import build_summary, verdicts
from interp_af.stages.gap import GapSummary, GroupGap
from interp_af.stages.patching import PatchingSummary, TopCell
from interp_af.stages.probes import BestProbe, ProbesSummary
from interp_af.stages.steering import SteeringSummary


def _gap(g, lo, hi, n=100):
    return {"harmful": GroupGap(("free", "paid"), {"free": 0.5 + g / 2, "paid": 0.5 - g / 2},
                                {"free": (0.0, 1.0), "paid": (0.0, 1.0)}, g, (lo, hi), 2 * g, (2 * lo, 2 * hi), n)}


ROLES = {"organism": "main", "organism-noinfo": "no_info", "organism-inverted": "inverted"}


def _summaries(noinfo=(0.01, -0.03, 0.05), inverted=(-0.7, -0.8, -0.6), closed=0.8, rnd=0.05):
    top = TopCell("resid_pre", "denoise", 1, None, "12:true→false", 0.93, (0.9, 0.96))
    return {
        "gap": GapSummary("organism", {"organism": _gap(0.8, 0.7, 0.9), "organism-noinfo": _gap(*noinfo),
                                       "organism-inverted": _gap(*inverted)}, ROLES),
        "steering": SteeringSummary(2, {}, (), 1.0, 4, 12, closed, None, 20, 0.0, rnd, 100.0, -0.1, 0.9, 1.6, 0.2,
                                    True, 0.1),
        "probes": ProbesSummary(("in_training",), ("organism",), (), (),
                                BestProbe("in_training", 3, "decision", 0.99, (0.98, 1.0), 0.53),
                                ({"layer": 3, "position": "decision", "cosine": 0.07, "label": "in_training"},)),
        "patching": PatchingSummary(2, {"denoise/resid_pre": top}, {}, top),
    }


def test_summary_holds_the_headline_keys():
    s = build_summary(_summaries())
    assert s["compliance"]["free"] == 0.9 and abs(s["compliance"]["paid"] - 0.1) < 1e-12 and s["compliance"]["gap"] == 0.8
    assert s["compliance"]["gap_ci"] == [0.7, 0.9]
    assert s["probe"]["best_layer"] == 3 and s["probe"]["auroc"] == 0.99 and s["probe"]["embed_cosine"] == 0.07
    assert s["patching"]["top_site"] == "resid_pre.1 @ 12:true→false" and s["patching"]["top_effect"] == 0.93
    assert s["steering"]["gap_closed"] == 0.8 and s["steering"]["random_abs_p95"] == 0.05


def test_verdicts_follow_the_contrasts():
    rows = {v.explanation.split(" (")[0]: v.verdict for v in verdicts(_summaries())}
    assert rows["The cue token acts directly on the answer"] == "rules out"
    assert rows['An inferred "in training" state'] == "supports"
    assert rows["A within-forward-pass direction carries the gap"] == "supports"
    assert rows["Being rated"] == "not tested"


def test_verdicts_flip_when_the_evidence_does():
    s = _summaries(noinfo=(0.6, 0.5, 0.7), inverted=(0.7, 0.6, 0.8), closed=0.1, rnd=0.1)
    rows = {v.explanation.split(" (")[0]: v.verdict for v in verdicts(s)}
    assert rows["The cue token acts directly on the answer"] == "supports"
    assert rows['An inferred "in training" state'] == "inconclusive"
    assert rows["A within-forward-pass direction carries the gap"] == "rules out"


def test_missing_contrasts_are_not_tested():
    rows = verdicts({"gap": GapSummary("default", {"default": _gap(0.1, 0.0, 0.2)}, {"default": "main"})})
    assert [r.verdict for r in rows] == ["not tested", "not tested", "not tested"]
