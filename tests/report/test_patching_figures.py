"""Patching figures against the PatchResult / AttributionCheck they draw."""

from __future__ import annotations

import html
import math

import numpy as np
import pytest

from interp_af.errors import InterpAFError
from interp_af.report.patching import attribution_figure, attribution_scatter, patch_heatmap

from .results import attribution_check, patch_result
from .traces import no_fixed_width, panel_title


def test_heatmap_cells_are_the_effect_at_their_layer_and_position():
    res = patch_result()
    fig = patch_heatmap(res)
    (hm,) = fig.data
    eff = res.effect()[:, 0]
    lo, hi = res.interval()
    first = fig.layout.meta["first_column"]
    assert first == 0                               # the first computed column is 2: keep up to 3 before it
    assert [html.unescape(x) for x in hm.x] == list(res.columns[first:])
    assert list(hm.y) == [f"L{L}" for L in res.layers]
    for i in range(len(res.layers)):
        for j, col in enumerate(range(first, len(res.columns))):
            z = hm.z[i][j]
            if res.computed[i, 0, col]:
                assert z == pytest.approx(float(eff[i, col]))
                assert f"{float(lo[i, 0, col]):+.3f}" in hm.text[i][j]
            else:                                    # skipped cells (identical in both arms) are blank, not 0
                assert z is None or math.isnan(z)
    assert "&lt;query&gt;" in hm.x[3] and no_fixed_width(fig)


def test_heatmap_of_heads_is_layer_by_head():
    res = patch_result(site="head_out", heads=(0, 1, 2), columns=("all",))
    fig = patch_heatmap(res)
    (hm,) = fig.data
    assert list(hm.x) == ["H0", "H1", "H2"]
    assert np.allclose(np.array(hm.z, dtype=float), res.effect()[:, :, 0].numpy())


def test_attribution_figure_has_each_method_against_exact_with_its_spearman():
    checks = [attribution_check("atp"), attribution_check("ig")]
    fig = attribution_figure(checks)
    cells = [t for t in fig.data if t.meta["role"] == "cells"]
    assert {(t.meta["method"], t.meta["site"]) for t in cells} == {(m, s) for m in ("atp", "ig")
                                                                   for s in ("resid_pre", "head_out")}
    for t in cells:
        check = next(c for c in checks if c.method == t.meta["method"])
        df = check.to_frame()
        d = df[df.site == t.meta["site"]]
        assert list(t.x) == pytest.approx(d.estimate.tolist()) and list(t.y) == pytest.approx(d.exact.tolist())
        # the panel a reader sees the points in names the method
        assert panel_title(fig, t) == {"atp": "AtP", "ig": "IG"}[check.method] + " vs exact"
        assert t.meta["spearman"] == pytest.approx(check.spearman[t.meta["site"]])
    bars = [t for t in fig.data if t.meta["role"] == "spearman"]
    assert [b.meta["method"] for b in bars] == ["atp", "ig"]
    for b, check in zip(bars, checks):
        assert list(b.x) == ["resid_pre", "head_out"]
        assert list(b.y) == pytest.approx([check.spearman[s] for s in b.x])
        assert panel_title(fig, b) == "Spearman per site"
        assert list(b.text) == [f"{check.spearman[s]:.2f}" for s in b.x]
    assert no_fixed_width(fig)


def test_attribution_figure_refuses_two_checks_of_one_method_and_reads_a_single_check():
    with pytest.raises(InterpAFError, match="one check per method"):
        attribution_figure([attribution_check("atp"), attribution_check("atp")])
    fig = attribution_figure(attribution_check("ig"))
    assert {t.meta["method"] for t in fig.data} == {"ig"}
    one = attribution_scatter(attribution_check("atp"))
    assert {t.meta["site"] for t in one.data if t.meta} == {"resid_pre", "head_out"} and no_fixed_width(one)
