"""Figures for probe results (plotly): they read result objects only, never activations.

- :func:`auroc_figure`: AUROC vs layer, one panel per position, a band for the bootstrap interval, the
  controls as dashed curves, and the 0.5 (chance) and 0.6 (leakage) lines;
- :func:`transfer_figure`: the train x test generalisation matrix, one heatmap per layer behind a slider;
- :func:`cosine_figure`: |cosine| of each probe's class direction with the cue tokens' embedding difference vs
  layer (a logistic probe's decision normal dotted beside it, for reference).

:func:`write_figure` writes self-contained HTML (plotly.js inlined, viewable offline) and tries a PNG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from interp_af.report.figures import write_figure  # noqa: F401  (re-exported for callers)

_COLORS = {"logreg": "#1f77b4", "diffmean": "#d62728"}
_CONTROL_DASH = {"random": "dash", "same_label": "dot"}


def auroc_figure(result: Any, *, kinds: tuple[str, ...] | None = None, title: str | None = None):
    """AUROC vs layer per position (panels), per kind (colour), controls dashed/dotted, with intervals."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    df = result.to_frame()
    kinds = kinds or tuple(dict.fromkeys(df["kind"]))
    positions = list(dict.fromkeys(df["position"])) or [""]
    fig = make_subplots(rows=1, cols=len(positions), shared_yaxes=True, subplot_titles=[p or "all" for p in positions])
    for c, pos in enumerate(positions, start=1):
        for kind in kinds:
            for control in dict.fromkeys(df["control"]):
                d = df[(df.position == pos) & (df.kind == kind) & (df.control == control)].sort_values("layer")
                if d.empty:
                    continue
                color = _COLORS.get(kind, "#444")
                name = kind if control == "none" else f"{kind} ({control} control)"
                if control == "none" and d["auroc_lo"].notna().any():
                    fig.add_trace(go.Scatter(x=list(d.layer) + list(d.layer[::-1]), y=list(d.auroc_hi) + list(d.auroc_lo[::-1]),
                                             fill="toself", fillcolor=color, opacity=0.15, line=dict(width=0),
                                             hoverinfo="skip", showlegend=False, legendgroup=name), row=1, col=c)
                fig.add_trace(go.Scatter(x=d.layer, y=d.auroc, mode="lines+markers", name=name, legendgroup=name,
                                         showlegend=c == 1, line=dict(color=color, dash=_CONTROL_DASH.get(control, "solid"),
                                                                      width=2 if control == "none" else 1),
                                         customdata=d[["auroc_lo", "auroc_hi", "accuracy"]].to_numpy(),
                                         hovertemplate="layer %{x}<br>AUROC %{y:.3f} [%{customdata[0]:.3f}, %{customdata[1]:.3f}]"
                                                       "<br>accuracy %{customdata[2]:.3f}"), row=1, col=c)
        fig.add_hline(y=0.5, line=dict(color="gray", width=1), row=1, col=c)
        fig.add_hline(y=0.6, line=dict(color="orange", width=1, dash="dot"), row=1, col=c)
        fig.update_xaxes(title_text="layer", row=1, col=c)
    label = df["label"].iloc[0] if len(df) else ""
    fig.update_yaxes(title_text="AUROC (held-out queries)", range=[0.0, 1.02], row=1, col=1)
    fig.update_layout(title=title or f"Probe for {label!r}: AUROC by layer (band: 95% query bootstrap; dashed: controls, "
                      "orange: leakage line)", template="plotly_white", height=420, width=max(500, 380 * len(positions)))
    return fig


def transfer_figure(result: Any, *, title: str | None = None):
    """Train x test AUROC heatmaps, one per layer, chosen with a slider (starts at the best off-diagonal layer)."""
    import numpy as np
    import plotly.graph_objects as go

    names = [c.name for c in result.conditions]
    A = result.auroc
    off = A.copy()
    if A.shape[0] > 1:
        off[np.eye(A.shape[0], dtype=bool)] = np.nan
    start = int(np.nanargmax(np.nanmean(np.abs(off - 0.5), axis=(0, 1)))) if np.isfinite(off).any() else 0
    fig = go.Figure()
    for li, layer in enumerate(result.layers):
        fig.add_trace(go.Heatmap(z=A[:, :, li], x=names, y=names, zmin=0, zmax=1, colorscale="RdBu", zmid=0.5,
                                 text=np.round(A[:, :, li], 2), texttemplate="%{text}", visible=li == start,
                                 colorbar=dict(title="AUROC"), name=f"layer {layer}"))
    steps = [dict(method="update", label=str(layer), args=[{"visible": [k == li for k in range(len(result.layers))]}])
             for li, layer in enumerate(result.layers)]
    fig.update_layout(sliders=[dict(active=start, currentvalue=dict(prefix="layer "), steps=steps)],
                      title=title or f"Generalisation ({result.kind}, {result.site}@{result.position}): train (rows) x test (columns)",
                      xaxis_title="tested on", yaxis_title="trained on", template="plotly_white", height=520, width=640)
    fig.update_yaxes(autorange="reversed")
    return fig


def cosine_figure(cos_df: Any, *, title: str | None = None):
    """|cosine| of each probe's class direction (mean difference) with the cue tokens' embedding difference vs
    layer, one solid line per position; a logistic probe's decision normal (``normal_cosine``: for scoring, not
    geometry) dotted beside it, labelled as such."""
    import numpy as np
    import plotly.graph_objects as go

    fig = go.Figure()
    for pos, d in cos_df.groupby("position", sort=False):
        # every kind of one probe set shares the class direction of its rows: one line per position
        cls = d.drop_duplicates("layer").sort_values("layer")
        fig.add_trace(go.Scatter(x=cls.layer, y=cls.abs_cosine, mode="lines+markers", name=f"{pos}: class direction",
                                 line=dict(color=_COLORS.get("diffmean"), dash="solid"), customdata=cls.cosine,
                                 hovertemplate="layer %{x}<br>|cos| %{y:.3f} (signed %{customdata:.3f})"))
        if "normal_cosine" in d:
            nrm = d[(d.kind == "logreg") & d.normal_cosine.notna()].sort_values("layer")
            if len(nrm):
                fig.add_trace(go.Scatter(x=nrm.layer, y=np.abs(nrm.normal_cosine), mode="lines+markers",
                                         name=f"{pos}: logistic decision normal (scoring only)",
                                         line=dict(color=_COLORS.get("logreg"), dash="dot"),
                                         hovertemplate="layer %{x}<br>|cos| %{y:.3f}"))
    fig.update_layout(title=title or "Probe class direction vs cue-token embedding difference: |cosine| by layer",
                      xaxis_title="layer", yaxis_title="|cosine|", yaxis_range=[0, 1.02], template="plotly_white",
                      height=420, width=700)
    return fig
