"""Figures of the SAE analyses (plotly): what a reader needs to judge a feature claim at a glance.

- :func:`attribution_bars`: top features by attribution to the compliance metric at one position, one bar per
  arm, with 95% intervals; each feature labelled by id and a short context string (where it fires most); the
  SAE error node drawn as its own bar so that what the SAE misses is visible beside what it explains.
- :func:`arm_scatter`: mean activation of every feature in arm a (x) vs arm b (y) at one position; features off
  the diagonal differ between arms; the top differential / attributed features are highlighted.
- :func:`ablation_figure`: change in the compliance gap when the chosen features are ablated, beside the random
  sets of as many features.

Figures read result objects only. :func:`write_figure` writes self-contained HTML, and a PNG when kaleido finds
a Chrome.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from interp_af.report.figures import write_figure  # noqa: F401  (re-exported for callers)

if TYPE_CHECKING:
    from interp_af.analysis.sae.attribution import FeatureAttribution
    from interp_af.analysis.sae.features import FeatureActs
    from interp_af.analysis.sae.intervene import FeatureIntervention

ARM_COLORS = ("#d62728", "#1f77b4")


def _label(feature: int, contexts: Mapping[int, str] | Any | None, width: int = 36) -> str:
    if feature < 0:
        return "SAE error"
    text = ""
    if contexts is not None:
        text = contexts.short_context(feature, width) if hasattr(contexts, "short_context") else contexts.get(feature, "")
    return f"f{feature}" + (f" · {text}" if text else "")


def attribution_bars(attr: "FeatureAttribution", position: str = "decision", *, k: int = 15,
                     arms: Sequence[str] | None = None, contexts: Mapping[int, str] | Any | None = None,
                     title: str | None = None):
    """Horizontal bars: the ``k`` nodes with the largest |mean attribution| in any arm, per arm, with intervals."""
    import plotly.graph_objects as go

    arms = list(arms or dict.fromkeys(attr.arm))
    sums = {a: attr.summary(position, a).set_index("feature") for a in arms}
    score = np.max(np.stack([sums[a]["attr"].abs().to_numpy() for a in arms]), 0)
    feats = sums[arms[0]].index.to_numpy()[np.argsort(-score)[:k]][::-1]   # largest at the top
    labels = [_label(int(f), contexts) for f in feats]
    fig = go.Figure()
    for i, a in enumerate(arms):
        s = sums[a].loc[feats]
        fig.add_trace(go.Bar(
            y=labels, x=s["attr"], orientation="h", name=a, marker_color=ARM_COLORS[i % 2] if i < 2 else None,
            error_x=dict(type="data", symmetric=False, array=s["ci_hi"] - s["attr"], arrayminus=s["attr"] - s["ci_lo"]),
            customdata=np.stack([feats, s["act"], s["frac_active"]], -1),
            hovertemplate="feature %{customdata[0]}<br>attribution %{x:.4f}<br>mean act %{customdata[1]:.3f}"
                          "<br>active in %{customdata[2]:.0%} of prompts<extra>" + a + "</extra>",
        ))
    fig.update_layout(
        barmode="group", template="plotly_white", height=max(320, 28 * len(feats) * max(1, len(arms)) // 2 + 140),
        title=title or f"SAE feature attribution to the compliance logit diff ({attr.method}) at {position}, "
                       f"{attr.site}",
        xaxis_title="attribution (logit diff units; 95% interval over prompts)", legend_title="arm",
        margin=dict(l=10, r=10, t=60, b=50),
    )
    return fig


def arm_scatter(fa: "FeatureActs", position: str = "decision", *, arms: Sequence[str] | None = None,
                highlight: Sequence[int] = (), contexts: Mapping[int, str] | Any | None = None,
                title: str | None = None):
    """One dot per active feature: mean activation in arm a (x) vs arm b (y) at ``position``."""
    import plotly.graph_objects as go

    arms = list(arms or dict.fromkeys(fa.arm))[:2]
    v = fa.at(position).double().numpy()
    arm = np.asarray(fa.arm)
    ok = ~np.isnan(v).any(1)
    xa, xb = v[ok & (arm == arms[0])].mean(0), v[ok & (arm == arms[1])].mean(0)
    live = np.flatnonzero((xa > 0) | (xb > 0))
    hl = np.array([f for f in highlight if f in set(live.tolist())], dtype=int)
    fig = go.Figure()
    fig.add_trace(go.Scattergl(
        x=xa[live], y=xb[live], mode="markers", name="features", marker=dict(size=5, color="#7f7f7f", opacity=0.6),
        customdata=live, hovertemplate="feature %{customdata}<br>" + arms[0] + " %{x:.3f}<br>" + arms[1]
                                       + " %{y:.3f}<extra></extra>"))
    if len(hl):
        fig.add_trace(go.Scatter(
            x=xa[hl], y=xb[hl], mode="markers+text", name="highlighted", text=[_label(int(f), contexts, 24) for f in hl],
            textposition="top center", marker=dict(size=9, color="#d62728"), customdata=hl,
            hovertemplate="feature %{customdata}<br>%{x:.3f} vs %{y:.3f}<extra></extra>"))
    top = float(max(xa[live].max(initial=0), xb[live].max(initial=0))) * 1.05 or 1.0
    fig.add_trace(go.Scatter(x=[0, top], y=[0, top], mode="lines", name="equal", line=dict(dash="dot", color="black")))
    fig.update_layout(template="plotly_white", height=560, width=640,
                      title=title or f"Feature activation, {arms[0]} vs {arms[1]}, at {position} ({fa.site})",
                      xaxis_title=f"mean activation, {arms[0]}", yaxis_title=f"mean activation, {arms[1]}")
    return fig


def ablation_figure(res: "FeatureIntervention", title: str | None = None):
    """Change of the compliance gap: the chosen features (with the interval of the edited gap) vs random sets."""
    import plotly.graph_objects as go

    r = res.random_delta_gaps
    fig = go.Figure()
    fig.add_trace(go.Box(y=r, name=f"{len(r)} random sets", boxpoints="all", jitter=0.4, marker_color="#7f7f7f"))
    c = res.chosen
    fig.add_trace(go.Scatter(
        x=[f"chosen ({len(c.features)})"], y=[res.delta_gap], mode="markers", marker=dict(size=12, color="#d62728"),
        error_y=dict(type="data", symmetric=False, array=[c.gap_hi - c.gap], arrayminus=[c.gap - c.gap_lo]),
        name="chosen", hovertemplate="features " + ",".join(map(str, c.features)) + "<br>delta gap %{y:.3f}<extra></extra>"))
    fig.add_hline(y=0, line_dash="dot")
    fig.update_layout(template="plotly_white", height=420, showlegend=False,
                      title=title or f"{res.mode} ablation at {','.join(res.positions)} ({res.site}): gap "
                                     f"{res.baseline.gap:.3f} -> {c.gap:.3f}",
                      yaxis_title=f"change in gap ({res.arms[0]} - {res.arms[1]} compliance)")
    return fig
