"""Figures of the SAE analyses (plotly): what a reader needs to judge a feature claim at a glance.

- :func:`attribution_bars`: top features by attribution to the compliance metric at one position, one bar per
  arm, with 95% intervals; each feature labelled by id and its top context (where it fires most, from
  :class:`~interp_af.analysis.sae.context.FeatureContext`); the SAE error node drawn as its own bar so that
  what the SAE misses is visible beside what it explains.
- :func:`arm_scatter`: mean activation of every feature in arm a (x) vs arm b (y) at one position; features off
  the diagonal differ between arms; the top differential / attributed features are highlighted.
- :func:`ablation_figure`: the fraction of the compliance gap closed when the chosen features are ablated,
  beside the random sets of as many features, at *each* ablated position (the headline reads the ``metric``
  position; a figure of ``decision`` alone would show a different number than the one quoted).

Figures read result objects only. :func:`write_figure` writes the HTML, and a PNG when kaleido finds a Chrome.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from interp_af.errors import InterpAFError
from interp_af.report.figures import write_figure  # noqa: F401  (re-exported for callers)
from interp_af.report.labels import plot_text

if TYPE_CHECKING:
    from interp_af.analysis.sae.attribution import FeatureAttribution
    from interp_af.analysis.sae.context import FeatureContext
    from interp_af.analysis.sae.features import FeatureActs
    from interp_af.analysis.sae.intervene import FeatureIntervention

ARM_COLORS = ("#d62728", "#1f77b4")
NO_CONTEXT = "(no context recorded)"


def feature_label(feature: int, contexts: "FeatureContext | Mapping[int, str] | None", width: int = 40) -> str:
    """``f47 · <context>`` (plain text; escape with :func:`plot_text` for plotly); ``SAE error`` for node -1."""
    if feature < 0:
        return "SAE error"
    text = NO_CONTEXT
    if hasattr(contexts, "short_context"):
        # FeatureContext says "(never active)" for any feature it has no row for, also one that was never
        # asked about (the study records contexts for the features it highlights): say which it is
        if feature in set(contexts.table["feature"].astype(int)):
            text = contexts.short_context(feature, width)
    elif contexts is not None:
        text = contexts.get(feature, NO_CONTEXT)
    return f"f{feature} · {text}"


def attribution_bars(attr: "FeatureAttribution", position: str = "decision", *, k: int = 15,
                     arms: Sequence[str] | None = None,
                     contexts: "FeatureContext | Mapping[int, str] | None" = None, title: str | None = None):
    """Horizontal bars: the ``k`` nodes with the largest |mean attribution| in any arm, one trace per arm, with
    intervals. Bars are labelled ``f<id> · <top context>`` from ``contexts`` (the study's FeatureContext); a
    feature without one says so in its label rather than showing a bare id. Each bar trace carries
    ``meta = {"arm", "position", "features"}`` (the feature id of each bar, in order)."""
    import plotly.graph_objects as go

    arms = list(arms or dict.fromkeys(attr.arm))
    sums = {a: attr.summary(position, a).set_index("feature") for a in arms}
    score = np.max(np.stack([sums[a]["attr"].abs().to_numpy() for a in arms]), 0)
    feats = sums[arms[0]].index.to_numpy()[np.argsort(-score, kind="stable")[:k]][::-1]   # largest at the top
    labels = [plot_text(feature_label(int(f), contexts)) for f in feats]
    fig = go.Figure()
    for i, a in enumerate(arms):
        s = sums[a].loc[feats]
        fig.add_trace(go.Bar(
            y=labels, x=s["attr"].to_numpy(), orientation="h", name=plot_text(a),
            marker_color=ARM_COLORS[i] if i < 2 else None,
            meta={"arm": a, "position": position, "features": [int(f) for f in feats]},
            error_x=dict(type="data", symmetric=False, array=(s["ci_hi"] - s["attr"]).to_numpy(),
                         arrayminus=(s["attr"] - s["ci_lo"]).to_numpy()),
            customdata=np.stack([feats, s["act"], s["frac_active"]], -1),
            hovertemplate="feature %{customdata[0]}<br>attribution %{x:.4f}<br>mean act %{customdata[1]:.3f}"
                          "<br>active in %{customdata[2]:.0%} of prompts<extra>" + plot_text(a) + "</extra>",
        ))
    fig.update_layout(
        barmode="group", template="plotly_white", height=max(320, 28 * len(feats) * max(1, len(arms)) // 2 + 140),
        title=plot_text(title or f"SAE feature attribution to the compliance logit diff ({attr.method}) at "
                                 f"{position}, {attr.site}"),
        xaxis_title="attribution (logit diff units; 95% interval over prompts)", legend_title="arm",
        yaxis=dict(automargin=True), margin=dict(l=10, r=10, t=60, b=50),
    )
    return fig


def arm_scatter(fa: "FeatureActs", position: str = "decision", *, arms: Sequence[str] | None = None,
                highlight: Sequence[int] = (), contexts: "FeatureContext | Mapping[int, str] | None" = None,
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
    a0, a1 = plot_text(arms[0]), plot_text(arms[1])
    fig = go.Figure()
    fig.add_trace(go.Scattergl(
        x=xa[live], y=xb[live], mode="markers", name="features", marker=dict(size=5, color="#7f7f7f", opacity=0.6),
        customdata=live, hovertemplate="feature %{customdata}<br>" + a0 + " %{x:.3f}<br>" + a1
                                       + " %{y:.3f}<extra></extra>"))
    if len(hl):
        fig.add_trace(go.Scatter(
            x=xa[hl], y=xb[hl], mode="markers+text", name="highlighted",
            text=[plot_text(feature_label(int(f), contexts, 24)) for f in hl],
            textposition="top center", marker=dict(size=9, color="#d62728"), customdata=hl,
            hovertemplate="feature %{customdata}<br>%{x:.3f} vs %{y:.3f}<extra></extra>"))
    top = float(max(xa[live].max(initial=0), xb[live].max(initial=0))) * 1.05 or 1.0
    fig.add_trace(go.Scatter(x=[0, top], y=[0, top], mode="lines", name="equal", line=dict(dash="dot", color="black")))
    fig.update_layout(template="plotly_white", height=560,
                      title=plot_text(title or f"Feature activation, {arms[0]} vs {arms[1]}, at {position} ({fa.site})"),
                      xaxis_title=f"mean activation, {a0}", yaxis_title=f"mean activation, {a1}")
    return fig


UNITS = ("closed", "delta")


def _where(res: "FeatureIntervention", several_sites: bool) -> str:
    pos = ",".join(res.positions)
    return f"{res.site} @ {pos}" if several_sites else pos


def ablation_values(res: "FeatureIntervention", unit: str) -> tuple[float, float, float, np.ndarray]:
    """(chosen, its interval lo, hi, random sets) in ``unit``: ``"closed"`` = fraction of the baseline gap
    closed, ``-(gap_edit - gap_base) / gap_base`` (the headline's number); ``"delta"`` = ``gap_edit - gap_base``.
    The interval is the bootstrap interval of the edited gap, with the baseline held fixed."""
    base, c = res.baseline.gap, res.chosen
    rand = np.array([r.gap for r in res.random], dtype=float)
    if unit == "delta":
        return c.gap - base, c.gap_lo - base, c.gap_hi - base, rand - base
    if unit != "closed":
        raise InterpAFError(f"unit {unit!r} is unknown; use one of {', '.join(UNITS)}")
    if base == 0:
        raise InterpAFError(f"the baseline gap at {','.join(res.positions)} is 0: there is no gap to close; "
                            "draw unit='delta'")
    lo, hi = sorted((1 - c.gap_lo / base, 1 - c.gap_hi / base))
    return 1 - c.gap / base, lo, hi, 1 - rand / base


def ablation_figure(results: "FeatureIntervention | Sequence[FeatureIntervention]", *, unit: str | None = None,
                    title: str | None = None):
    """The effect of ablating the chosen features at each position of ``results`` (one FeatureIntervention per
    ablated position, e.g. ``decision`` and ``metric``): a red marker with the interval for the chosen set, the
    random sets of as many features as a box of dots beside it. One trace per (position, chosen | random),
    each with ``meta = {"position", "site", "role", "features", "unit"}``.

    ``unit``: ``"closed"`` (fraction of the gap closed, the headline's unit; the default where every baseline
    gap is nonzero) or ``"delta"`` (change in the gap, compliance units)."""
    import plotly.graph_objects as go

    items = [results] if hasattr(results, "chosen") else list(results)
    if not items:
        raise InterpAFError("no feature interventions given; pass the ablation result of at least one position")
    if unit is None:
        unit = "closed" if all(r.baseline.gap != 0 for r in items) else "delta"
    several_sites = len({r.site for r in items}) > 1
    fig = go.Figure()
    subtitle = []
    for i, res in enumerate(items):
        where = _where(res, several_sites)
        chosen, lo, hi, rand = ablation_values(res, unit)
        meta = {"position": ",".join(res.positions), "site": res.site, "unit": unit}
        fig.add_trace(go.Box(
            x=[where] * len(rand), y=rand, name=f"{len(rand)} random sets of {len(res.chosen.features)}",
            boxpoints="all", jitter=0.4, pointpos=0, marker_color="#7f7f7f", line_color="#7f7f7f",
            legendgroup="random", showlegend=i == 0, offsetgroup="random",
            meta={**meta, "role": "random", "features": [list(r.features) for r in res.random]},
            hovertemplate=plot_text(where) + "<br>random set: %{y:.3f}<extra></extra>"))
        feats = ", ".join(map(str, res.chosen.features))
        fig.add_trace(go.Scatter(
            x=[where], y=[chosen], mode="markers+text", name=f"chosen ({len(res.chosen.features)} features)",
            text=[f"{chosen:.0%}" if unit == "closed" else f"{chosen:+.3f}"], textposition="middle right",
            marker=dict(size=13, color="#d62728", symbol="diamond"), legendgroup="chosen", showlegend=i == 0,
            error_y=dict(type="data", symmetric=False, array=[hi - chosen], arrayminus=[chosen - lo]),
            meta={**meta, "role": "chosen", "features": list(res.chosen.features)},
            hovertemplate=plot_text(f"{where}: features {feats}<br>gap {res.baseline.gap:.3f} -> "
                                    f"{res.chosen.gap:.3f}") + "<br>%{y:.3f}<extra></extra>"))
        subtitle.append(f"{where}: gap {res.baseline.gap:.3f} → {res.chosen.gap:.3f}")
    fig.add_hline(y=0, line_dash="dot")
    first = items[0]
    fig.update_layout(
        template="plotly_white", height=440, boxmode="overlay",
        title=plot_text(title or f"SAE feature {first.mode} ablation ({first.site}), by position") +
        "<br><sup>" + plot_text("; ".join(subtitle)) + "</sup>",
        xaxis=dict(title="ablated at", type="category"),
        yaxis_title=("fraction of the gap closed (1 = gap gone)" if unit == "closed" else
                     f"change in gap ({first.arms[0]} - {first.arms[1]} compliance)"),
        legend=dict(orientation="h", y=-0.2), margin=dict(t=90))
    return fig
