"""Probe figures against the ProbeResult they draw: one curve per (label, position, kind, control), its x the
layers once each, its y the AUROC of exactly that (label, position, kind, control, layer)."""

from __future__ import annotations

import html

import pytest

from interp_af.report.probes import auroc_figure, cosine_figure, transfer_figure

from .results import cue_cosine_frame, probe_result, probe_value, transfer_result
from .traces import all_text, no_fixed_width, panel_title

LABELS = ("in_training", "arm=free")
POSITIONS = ("cue", "decision")
LAYERS = [0, 1, 2, 3]


def _name(trace) -> tuple[str, str]:
    """(kind, control) from a curve's legend name: ``logreg`` or ``logreg, random control``."""
    name = html.unescape(trace.name)
    kind, _, rest = name.partition(", ")
    return kind, (rest.removesuffix(" control") if rest else "none")


def test_auroc_curves_are_one_label_each_and_match_the_scores():
    res = probe_result(LABELS, POSITIONS, LAYERS)
    fig = auroc_figure(res)
    curves = [t for t in fig.data if t.mode == "lines+markers"]
    seen = set()
    for t in curves:
        # a line over layers visits each layer once: two labels drawn as one line would repeat every layer
        assert list(t.x) == LAYERS, f"curve {t.name!r} has x {list(t.x)}: it mixes several series"
        # read (label, position) from the panel the reader sees the curve in, (kind, control) from its legend
        label, _, position = panel_title(fig, t).partition(" @ ")
        assert label in LABELS and position in POSITIONS, f"panel title {panel_title(fig, t)!r}"
        kind, control = _name(t)
        want = [probe_value(LABELS.index(label), POSITIONS.index(position), kind, control, L) for L in LAYERS]
        assert list(t.y) == pytest.approx(want), f"{label} @ {position} {kind} {control}"
        assert t.meta["label"] == label and t.meta["position"] == position
        key = (label, position, kind, control)
        assert key not in seen
        seen.add(key)
    assert len(seen) == len(LABELS) * len(POSITIONS) * 2 * 3     # every series drawn, once
    # the headings name every label probed, not just the first
    for lab in LABELS:
        assert lab in all_text(fig)
    assert no_fixed_width(fig)


def test_auroc_bands_are_the_intervals_of_their_curve():
    res = probe_result(LABELS, POSITIONS, LAYERS)
    fig = auroc_figure(res)
    df = res.to_frame()
    bands = [t for t in fig.data if t.fill == "toself"]
    assert len(bands) == len(LABELS) * len(POSITIONS) * 2          # real labels only, per kind
    for b in bands:
        m = b.meta
        d = df[(df.label == m["label"]) & (df.position == m["position"]) & (df.kind == m["kind"])
               & (df.control == "none")].sort_values("layer")
        assert list(b.y) == pytest.approx(list(d.auroc_hi) + list(d.auroc_lo[::-1]))
        assert m["label"] in panel_title(fig, b) and m["position"] in panel_title(fig, b)


def test_auroc_single_label_and_empty_result():
    fig = auroc_figure(probe_result(("in_training",), ("decision",), [0, 1]))
    assert {t.meta["label"] for t in fig.data} == {"in_training"}
    from interp_af.analysis.probes import ProbeConfig, ProbeResult

    empty = auroc_figure(ProbeResult(ProbeConfig(), (), None))
    assert len(empty.data) == 0 and "no probe scores" in empty.layout.annotations[0].text


def test_cosine_curves_are_one_label_position_and_direction_each():
    """Per (label, position): the class direction (solid) and the logistic decision normal (dotted, named
    as scoring-only); each trace's values are the table's for exactly that label, position and direction."""
    df = cue_cosine_frame(LABELS, POSITIONS, [0, 1, 2])
    fig = cosine_figure(df)
    assert len(fig.data) == len(LABELS) * len(POSITIONS) * 2
    for t in fig.data:
        assert list(t.x) == [0, 1, 2]
        label, position, direction = t.meta["label"], t.meta["position"], t.meta["direction"]
        assert label == panel_title(fig, t) and html.unescape(t.name).startswith(position + ": ")
        d = df[(df.label == label) & (df.position == position)]
        if direction == "class_mean_difference":
            d = d.drop_duplicates("layer").sort_values("layer")
            assert list(t.y) == pytest.approx(list(d.abs_cosine)) and t.line.dash == "solid"
            assert list(t.customdata) == pytest.approx(list(d.cosine))
        else:
            d = d[d.kind == "logreg"].sort_values("layer")
            assert direction == "decision_normal" and "scoring only" in t.name and t.line.dash == "dot"
            assert list(t.y) == pytest.approx(list(d.normal_cosine.abs()))
    assert no_fixed_width(fig)


def test_transfer_heatmaps_are_the_matrix_of_each_layer():
    res = transfer_result()
    fig = transfer_figure(res)
    assert len(fig.data) == len(res.layers)
    for li, t in enumerate(fig.data):
        assert [list(r) for r in t.z] == res.auroc[:, :, li].tolist()
        assert [html.unescape(x) for x in t.x] == [c.name for c in res.conditions]
        assert t.name == f"layer {res.layers[li]}"
    assert "&lt;arm&gt;" in fig.data[0].x[2]                          # escaped for plotly's HTML subset
    assert sum(bool(t.visible) for t in fig.data) == 1 and no_fixed_width(fig)
