"""Figures for probe results (plotly): they read result objects only, never activations.

- :func:`auroc_figure`: AUROC vs layer, one panel per (label, position), a band for the bootstrap interval, the
  controls as dashed curves, and the 0.5 (chance) and 0.6 (leakage) lines;
- :func:`transfer_figure`: the train x test generalisation matrix, one heatmap per layer behind a slider;
- :func:`cosine_figure`: |cosine| of each probe's class direction with the cue tokens' embedding difference vs
  layer (a logistic probe's decision normal dotted beside it, for reference).

One trace is one (label, position, kind, control): a sweep that probes several labels (``in_training`` and
``arm=free``) gets one panel row per label, never one line that zig-zags between them.
:func:`write_figure` writes the HTML (see :mod:`interp_af.report.figures`) and tries a PNG.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from interp_af.report.figures import write_figure  # noqa: F401  (re-exported for callers)
from interp_af.report.labels import plot_text

if TYPE_CHECKING:
    from interp_af.analysis.probe_transfer import TransferResult
    from interp_af.analysis.probes import ProbeResult

_COLORS = {"logreg": "#1f77b4", "diffmean": "#d62728"}
_CONTROL_DASH = {"random": "dash", "same_label": "dot"}


def auroc_figure(result: "ProbeResult", *, kinds: tuple[str, ...] | None = None, title: str | None = None):
    """AUROC vs layer: one panel per (label, position) - rows are labels, columns positions - one curve per
    probe kind (colour) and control (dashed / dotted), a band for the bootstrap interval of the real labels.

    One trace is one (label, position, kind, control): its x are the layers, each once, so two labels can never
    share a line. Each curve carries ``meta = {"label", "position", "kind", "control", "role"}``."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    df = result.to_frame()
    if df.empty:
        fig = go.Figure()
        fig.add_annotation(text="no probe scores in this result", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper")
        fig.update_layout(title=title or "Probe AUROC by layer", template="plotly_white", height=300)
        return fig
    kinds = kinds or tuple(dict.fromkeys(df["kind"]))
    labels = list(dict.fromkeys(df["label"]))
    positions = list(dict.fromkeys(df["position"]))
    controls = list(dict.fromkeys(df["control"]))
    fig = make_subplots(rows=len(labels), cols=len(positions), shared_yaxes=True, shared_xaxes=True,
                        subplot_titles=[plot_text(f"{lab} @ {pos or 'all'}") for lab in labels for pos in positions],
                        vertical_spacing=min(0.12, 0.5 / len(labels)), horizontal_spacing=0.04)
    fig.update_annotations(font_size=12)   # panel titles: several per row must not run into each other
    shown: set[str] = set()
    for r, lab in enumerate(labels, start=1):
        for c, pos in enumerate(positions, start=1):
            for kind in kinds:
                for control in controls:
                    d = df[(df.label == lab) & (df.position == pos) & (df.kind == kind)
                           & (df.control == control)].sort_values("layer")
                    if d.empty:
                        continue
                    color = _COLORS.get(kind, "#444")
                    name = kind if control == "none" else f"{kind}, {control} control"
                    where = plot_text(f"{lab} @ {pos or 'all'}")
                    meta = {"label": lab, "position": pos, "kind": kind, "control": control}
                    if control == "none" and d["auroc_lo"].notna().any():
                        fig.add_trace(go.Scatter(
                            x=list(d.layer) + list(d.layer[::-1]), y=list(d.auroc_hi) + list(d.auroc_lo[::-1]),
                            fill="toself", fillcolor=color, opacity=0.15, line=dict(width=0), hoverinfo="skip",
                            showlegend=False, legendgroup=name, name=f"{name} 95% band",
                            meta={**meta, "role": "band"}), row=r, col=c)
                    fig.add_trace(go.Scatter(
                        x=d.layer, y=d.auroc, mode="lines+markers", name=name, legendgroup=name,
                        showlegend=name not in shown, meta={**meta, "role": "curve"},
                        line=dict(color=color, dash=_CONTROL_DASH.get(control, "solid"),
                                  width=2 if control == "none" else 1),
                        customdata=d[["auroc_lo", "auroc_hi", "accuracy"]].to_numpy(),
                        hovertemplate=where + "<br>layer %{x}<br>AUROC %{y:.3f} [%{customdata[0]:.3f}, "
                                      "%{customdata[1]:.3f}]<br>accuracy %{customdata[2]:.3f}<extra>"
                                      + plot_text(name) + "</extra>"), row=r, col=c)
                    shown.add(name)
            fig.add_hline(y=0.5, line=dict(color="gray", width=1), row=r, col=c)
            fig.add_hline(y=0.6, line=dict(color="orange", width=1, dash="dot"), row=r, col=c)
        fig.update_yaxes(title_text="AUROC", range=[0.0, 1.02], row=r, col=1)
    for c in range(1, len(positions) + 1):
        fig.update_xaxes(title_text="layer", row=len(labels), col=c)
    fig.update_layout(
        title=plot_text(title or f"Probe AUROC by layer for {', '.join(labels)}") +
        "<br><sup>held-out queries; band: 95% query bootstrap; dashed/dotted: controls; orange: leakage line</sup>",
        template="plotly_white", height=180 + 260 * len(labels), margin=dict(t=110),
        legend=dict(orientation="h", yanchor="top", y=-0.08 - 0.1 / len(labels), x=0))
    return fig


def transfer_figure(result: "TransferResult", *, title: str | None = None):
    """Train x test AUROC heatmaps, one per layer, chosen with a slider (starts at the best off-diagonal layer)."""
    import numpy as np
    import plotly.graph_objects as go

    names = [plot_text(c.name) for c in result.conditions]
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
                      title=plot_text(title or f"Generalisation ({result.kind}, {result.site}@{result.position}): "
                                                "train (rows) x test (columns)"),
                      xaxis_title="tested on", yaxis_title="trained on", template="plotly_white", height=520)
    fig.update_yaxes(autorange="reversed")
    return fig


def cosine_figure(cos_df: Any, *, title: str | None = None):
    """|cosine| with the cue tokens' embedding difference vs layer, one panel per label. Per position: the
    probe's *class direction* (mean difference of the classes: the geometry) as a solid line, and a logistic
    probe's *decision normal* (``normal_cosine``: for scoring, not geometry) dotted beside it, labelled as such.
    ``cos_df``: the table of :func:`interp_af.analysis.probe_transfer.cue_cosines` (one row per probe)."""
    import numpy as np
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    df = cos_df if "label" in cos_df.columns else cos_df.assign(label="")
    labels = list(dict.fromkeys(df["label"]))
    positions = list(dict.fromkeys(df["position"]))
    palette = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756", "#72b7b2", "#9d755d", "#bab0ac")
    fig = make_subplots(rows=1, cols=max(1, len(labels)), shared_yaxes=True,
                        subplot_titles=[plot_text(lab or "probe") for lab in labels] or None)
    for c, lab in enumerate(labels, start=1):
        for pos, d in df[df.label == lab].groupby("position", sort=False):
            colour = palette[positions.index(pos) % len(palette)]
            # every kind of one probe set shares its rows' class direction: one line per (label, position)
            cls = d.drop_duplicates("layer").sort_values("layer")
            name = f"{pos}: class direction"
            fig.add_trace(go.Scatter(
                x=cls.layer, y=cls.abs_cosine, mode="lines+markers", name=plot_text(name), legendgroup=name,
                showlegend=c == 1, meta={"label": lab, "position": pos, "direction": "class_mean_difference"},
                line=dict(color=colour, dash="solid"), customdata=cls.cosine,
                hovertemplate=plot_text(f"{lab} @ {pos}, class direction") +
                "<br>layer %{x}<br>|cos| %{y:.3f} (signed %{customdata:.3f})<extra></extra>"), row=1, col=c)
            if "normal_cosine" in d:
                nrm = d[(d.kind == "logreg") & d.normal_cosine.notna()].sort_values("layer")
                if len(nrm):
                    name = f"{pos}: logistic decision normal (scoring only)"
                    fig.add_trace(go.Scatter(
                        x=nrm.layer, y=np.abs(nrm.normal_cosine), mode="lines+markers", name=plot_text(name),
                        legendgroup=name, showlegend=c == 1,
                        meta={"label": lab, "position": pos, "direction": "decision_normal"},
                        line=dict(color=colour, dash="dot"),
                        hovertemplate=plot_text(f"{lab} @ {pos}, decision normal") +
                        "<br>layer %{x}<br>|cos| %{y:.3f}<extra></extra>"), row=1, col=c)
        fig.update_xaxes(title_text="layer", row=1, col=c)
    fig.update_yaxes(title_text="|cosine|", range=[0, 1.02], row=1, col=1)
    fig.update_layout(title=plot_text(title or "Probe class direction vs cue-token embedding difference: |cosine| by "
                                               "layer"), template="plotly_white", height=420)
    return fig
