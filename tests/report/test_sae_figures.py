"""SAE figures against the results they draw: feature bars labelled by each feature's top context (never a
bare id), and the ablation at every position it was run at, in the headline's unit."""

from __future__ import annotations

import html
import re

import numpy as np
import pytest

from interp_af.errors import InterpAFError
from interp_af.report.sae import ablation_figure, arm_scatter, attribution_bars

from .results import ARMS, CONTEXT_TEXT, feature_attribution, feature_context, feature_intervention
from .traces import no_fixed_width


@pytest.mark.parametrize("position", ["decision", "metric"])
def test_attribution_bars_are_the_top_features_of_each_arm(position):
    attr, ctx = feature_attribution(), feature_context()
    k = 4
    fig = attribution_bars(attr, position, k=k, contexts=ctx)
    assert [t.meta["arm"] for t in fig.data] == list(ARMS)
    sums = {a: attr.summary(position, a).set_index("feature") for a in ARMS}
    score = np.max([sums[a]["attr"].abs() for a in ARMS], 0)
    want = sums["free"].index[np.argsort(-score, kind="stable")[:k]][::-1].tolist()
    for t in fig.data:
        feats = t.meta["features"]
        assert feats == want and t.meta["position"] == position
        assert list(t.x) == pytest.approx(sums[t.meta["arm"]].loc[feats, "attr"].tolist())
        lo = sums[t.meta["arm"]].loc[feats, "ci_lo"].to_numpy()
        assert list(t.error_x.arrayminus) == pytest.approx((t.x - lo).tolist())
        for f, label in zip(feats, t.y):
            shown = html.unescape(label)
            assert shown.startswith("SAE error" if f < 0 else f"f{f} · ")
            if f in CONTEXT_TEXT:   # the feature's own top context, shown literally (tags escaped for plotly)
                assert ctx.short_context(f, 40) in shown
                assert "<" not in label
    assert no_fixed_width(fig)


def test_attribution_bars_never_show_a_bare_feature_id():
    attr = feature_attribution()
    for contexts in (feature_context(), None):
        fig = attribution_bars(attr, "decision", k=6, contexts=contexts)
        for label in fig.data[0].y:
            assert not re.fullmatch(r"f\d+", label), f"bare feature id {label!r} on a bar"
    labels = [html.unescape(y) for y in attribution_bars(attr, "decision", k=6).data[0].y]
    assert any("(no context recorded)" in y for y in labels)
    # a feature that fires but has no row in the contexts is "not recorded", never "(never active)"
    fig = attribution_bars(attr, "decision", k=6, contexts=feature_context())
    for f, label in zip(fig.data[0].meta["features"], fig.data[0].y):
        if f >= 0 and f not in CONTEXT_TEXT:
            assert html.unescape(label) == f"f{f} · (no context recorded)"


def test_ablation_is_drawn_at_each_position_in_the_headline_unit():
    # the study's numbers: ablation at `decision` is a null, at `metric` it closes 30% of the gap
    dec = feature_intervention("decision", 0.826, 0.826, seed=1)
    met = feature_intervention("metric", 0.8, 0.56, seed=2)
    fig = ablation_figure([dec, met])
    chosen = {t.meta["position"]: t for t in fig.data if t.meta["role"] == "chosen"}
    random = {t.meta["position"]: t for t in fig.data if t.meta["role"] == "random"}
    assert set(chosen) == set(random) == {"decision", "metric"}
    for res in (dec, met):
        pos = res.positions[0]
        c, r = chosen[pos], random[pos]
        assert list(c.x) == [pos] and set(r.x) == {pos}
        # the headline's number: gap_closed_by_ablation = -delta_gap / gap_baseline
        assert c.y[0] == pytest.approx(-res.delta_gap / res.baseline.gap)
        assert list(r.y) == pytest.approx((-res.random_delta_gaps / res.baseline.gap).tolist())
        assert c.y[0] - c.error_y.arrayminus[0] == pytest.approx(1 - res.chosen.gap_hi / res.baseline.gap)
        assert c.meta["features"] == list(res.chosen.features)
    assert chosen["metric"].y[0] == pytest.approx(0.3) and chosen["decision"].y[0] == pytest.approx(0.0)
    assert no_fixed_width(fig)


def test_ablation_in_gap_units_and_single_result():
    met = feature_intervention("metric", 0.8, 0.56)
    fig = ablation_figure(met, unit="delta")
    c = next(t for t in fig.data if t.meta["role"] == "chosen")
    assert c.y[0] == pytest.approx(met.delta_gap) and c.meta["unit"] == "delta"
    zero = feature_intervention("metric", 0.0, 0.1)
    assert next(t for t in ablation_figure(zero).data if t.meta["role"] == "chosen").meta["unit"] == "delta"
    with pytest.raises(InterpAFError, match="no gap to close"):
        ablation_figure(zero, unit="closed")
    with pytest.raises(InterpAFError, match="at least one position"):
        ablation_figure([])


def test_arm_scatter_means_per_arm():
    import torch

    from interp_af.analysis.sae.features import FeatureActs

    acts = torch.tensor([[[1.0, 0.0, 2.0]], [[3.0, 0.0, 0.0]], [[2.0, 0.0, 4.0]], [[5.0, 0.0, 0.0]]])
    fa = FeatureActs("toy", "resid_post.1", ("decision",), acts, ("q0", "q0", "q1", "q1"), ("free", "paid") * 2)
    fig = arm_scatter(fa, "decision", highlight=[2], contexts={2: "<x>"})
    pts, hl = fig.data[0], fig.data[1]
    assert list(pts.customdata) == [0, 2]                            # feature 1 never fires
    assert list(pts.x) == [1.5, 3.0] and list(pts.y) == [4.0, 0.0]
    assert list(hl.text) == ["f2 · &lt;x&gt;"] and no_fixed_width(fig)
