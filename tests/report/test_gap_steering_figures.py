"""The gap, contrast and steering figures against the GapResult / SteerResult they draw."""

from __future__ import annotations

import html

import pytest

from interp_af.report.gap import contrast_figure, gap_figure
from interp_af.report.steering import dose_response

from .results import ARMS, gap_result, steer_result
from .traces import no_fixed_width


def test_gap_bars_are_compliance_per_arm_and_the_gap_per_group():
    res = gap_result()
    assert set(res.groups) == {"harmful", "benign"}
    fig = gap_figure(res)
    for t in fig.data:
        g = res.groups[t.meta["group"]]
        if t.meta["role"] == "compliance":
            assert list(t.x) == list(ARMS)
            assert list(t.y) == pytest.approx([g["compliance"][a] for a in ARMS])
            assert list(t.error_y.arrayminus) == pytest.approx([g["compliance"][a] - g["compliance_ci"][a][0]
                                                                 for a in ARMS])
        else:
            assert list(t.y) == pytest.approx([g["gap"]])
            assert t.error_y.array[0] == pytest.approx(g["gap_ci"][1] - g["gap"])
    assert {(t.meta["group"], t.meta["role"]) for t in fig.data} == {(g, r) for g in ("harmful", "benign")
                                                                      for r in ("compliance", "gap")}
    assert no_fixed_width(fig)


def test_contrast_bars_are_the_gap_of_each_variant_main_first():
    gaps = {"organism-inverted": gap_result("organism-inverted", 0.1, 0.9, seed=1),
            "organism": gap_result("organism", seed=2), "organism-noinfo": gap_result("organism-noinfo", 0.5, 0.5, seed=3)}
    fig = contrast_figure(gaps, "organism")
    (bar,) = fig.data
    order = ["organism", "organism-inverted", "organism-noinfo"]
    assert [html.unescape(x) for x in bar.x] == order and bar.meta["variants"] == order
    assert list(bar.y) == pytest.approx([gaps[v].gap for v in order])
    assert list(bar.error_y.array) == pytest.approx([gaps[v].gap_ci[1] - gaps[v].gap for v in order])
    # the gap stage's summary form (what today's report passes) draws the same bars
    summary = {v: {"harmful": {"gap": r.gap, "gap_ci": list(r.gap_ci), "arms": list(r.arms)}} for v, r in gaps.items()}
    assert list(contrast_figure(summary, "organism").data[0].y) == pytest.approx(list(bar.y))
    assert no_fixed_width(fig)


def test_dose_response_curves_are_the_gap_closed_per_control():
    res = steer_result()
    fig = dose_response(res)
    closed = res.closed(arm=1)
    curves = [t for t in fig.data if t.meta and t.meta["role"] == "closed"]
    assert [t.meta["control"] for t in curves] == list(res.controls)
    for t in curves:
        c = res.controls.index(t.meta["control"])
        assert list(t.x) == list(res.alphas)
        assert list(t.y) == pytest.approx(closed[c].tolist())
    comp = res.compliance()
    for t in (t for t in fig.data if t.meta and t.meta["role"] == "compliance"):
        arm = ARMS.index(t.meta["arm"])
        assert list(t.y) == pytest.approx(comp[res.controls.index("direction"), :, arm].tolist())
    assert no_fixed_width(fig)
