"""Figures of patching and attribution results.

- :func:`patch_heatmap`: layer x position (the prompt's tokens as x labels) for residual/sub-layer sites, or
  layer x head for ``head_out``; colour = normalised effect (0 = unpatched, 1 = the other arm), hover shows the
  query-bootstrap interval. Cells that were skipped because they are provably zero are drawn blank-white.
- :func:`attribution_scatter`: attribution estimate vs exact effect per cell for one method, one colour per
  site type, with the Spearman correlation in the legend.
- :func:`attribution_figure`: every method at once (AtP and IG against exact patching, one panel each) and
  their Spearman correlation per site side by side: the figure that says where the fast estimate is trusted.

HTML always (see :mod:`interp_af.report.figures`); PNG only when kaleido finds a Chrome.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from interp_af.errors import InterpAFError
from interp_af.report.labels import plot_text

if TYPE_CHECKING:
    from interp_af.analysis.attribution import AttributionCheck
    from interp_af.analysis.patching import PatchResult


def write_figure(fig, out_dir: str | Path, stem: str, *, js: str | Path | None = None) -> list[Path]:
    """``<out_dir>/<stem>.html`` always, ``.png`` when a Chrome is available (see :mod:`interp_af.report.figures`;
    ``js``: the shared plotly.js of the run folder, default inlined)."""
    from interp_af.report.figures import write_figure as _write

    return _write(fig, Path(out_dir) / stem, js=js)


def patch_heatmap(result: "PatchResult", *, title: str | None = None, first_column: int | None = None):
    """Heatmap of ``result``: layer x column (tokens), or layer x head (head_out over all positions).

    ``first_column``: hide columns before it (default: from a few tokens before the first computed column,
    since everything before the first differing token is exactly zero)."""
    import plotly.graph_objects as go

    eff = result.effect()
    lo, hi = result.interval()
    layers = [f"L{L}" for L in result.layers]
    if result.heads != (-1,) and len(result.columns) == 1:
        z, zl, zh = eff[:, :, 0], lo[:, :, 0], hi[:, :, 0]
        x = [f"H{h}" for h in result.heads]
        x_title = "head"
        mask = result.computed[:, :, 0]
    else:
        if result.heads != (-1,):  # head x position: average over heads would hide signs; show the max-|effect| head
            idx = eff.abs().argmax(1, keepdim=True)
            z, zl, zh = (t.gather(1, idx)[:, 0] for t in (eff, lo, hi))
            mask = result.computed.any(1)
        else:
            z, zl, zh, mask = eff[:, 0], lo[:, 0], hi[:, 0], result.computed[:, 0]
        x = list(result.columns)
        x_title = "position (token)"
        if first_column is None and "first_live_column" in result.info:   # a screen's confirmed cells
            first_column = max(int(result.info["first_live_column"]) - 3, 0)
        if first_column is None:
            # an attribution estimate is computed everywhere; it is exactly 0 before the first differing token
            live = (z != 0) if "method" in result.info else mask
            cols = live.any(0).nonzero()
            first_column = max(int(cols[0]) - 3, 0) if len(cols) else 0
        z, zl, zh, mask, x = z[:, first_column:], zl[:, first_column:], zh[:, first_column:], \
            mask[:, first_column:], x[first_column:]
    z_show = z.clone().float()
    z_show[~mask] = float("nan")
    skipped = ("screened only (not patched exactly)" if result.info.get("mode") == "screen"
               else "0 (identical in both arms)")
    text = [[f"{z[i, j]:+.3f} [{zl[i, j]:+.3f}, {zh[i, j]:+.3f}]" if mask[i, j] else skipped
             for j in range(z.shape[1])] for i in range(z.shape[0])]
    bound = max(1.0, float(z.abs().max())) if z.numel() else 1.0
    fig = go.Figure(go.Heatmap(z=z_show.tolist(), x=[plot_text(c) for c in x], y=layers, text=text, hovertemplate="%{y} %{x}: %{text}<extra></extra>",
                               colorscale="RdBu", zmid=0, zmin=-bound, zmax=bound,
                               colorbar=dict(title="effect"), xgap=1, ygap=1))
    what = result.info.get("method", "exact")
    fig.update_layout(
        title=plot_text(title or (f"{what} patching: {result.site} ({result.direction}, clean = {result.clean_arm}, "
                                  f"n = {len(result.query_ids)} queries); 0 = unpatched, 1 = other arm")),
        xaxis=dict(title=x_title, type="category", tickangle=-60, automargin=True),
        yaxis=dict(title="layer", autorange="reversed"), template="plotly_white", height=250 + 28 * len(layers),
        meta={"site": result.site, "direction": result.direction, "first_column": first_column or 0})
    return fig


def attribution_scatter(check: "AttributionCheck", *, title: str | None = None):
    """Attribution estimate (x) vs exact patching (y) per validated cell, one series per site type."""
    import plotly.graph_objects as go

    df = check.to_frame()
    fig = go.Figure()
    for site, g in df.groupby("site"):
        rho = check.spearman.get(site, float("nan"))
        label = [f"L{r.layer} H{r['head']} {r.column}" if r["head"] >= 0 else f"L{r.layer} {r.column}"
                 for _, r in g.iterrows()]
        fig.add_trace(go.Scatter(x=g["estimate"], y=g["exact"], mode="markers", name=f"{site} (Spearman {rho:.2f})",
                                 text=[plot_text(t) for t in label], meta={"method": check.method, "site": site},
                                 hovertemplate="%{text}<br>estimate %{x:.3f}<br>exact %{y:.3f}<extra></extra>"))
    if len(df):
        lo, hi = float(min(df.estimate.min(), df.exact.min())), float(max(df.estimate.max(), df.exact.max()))
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line=dict(dash="dot", color="grey"),
                                 name="y = x", hoverinfo="skip"))
    fig.update_layout(title=title or f"{check.method} vs exact patching (normalised effect)",
                      xaxis_title="attribution estimate", yaxis_title="exact patching", template="plotly_white",
                      height=500)
    return fig


METHOD_NAMES = {"atp": "AtP", "ig": "IG"}
_SITE_COLORS = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#b279a2", "#72b7b2")


def _cell_label(r) -> str:
    return f"L{r['layer']} H{r['head']} {r['column']}" if r["head"] >= 0 else f"L{r['layer']} {r['column']}"


def attribution_figure(checks: "AttributionCheck | Sequence[AttributionCheck]", *, title: str | None = None):
    """Attribution estimates against exact patching for every method in ``checks`` (one AttributionCheck per
    method, e.g. AtP and IG): one scatter panel per method (estimate x, exact y, one trace per site, the y = x
    line), and a last panel with the Spearman correlation per site, one bar trace per method.

    Traces carry ``meta``: ``{"method", "site", "spearman", "role": "cells"}`` for the scatters and
    ``{"method", "role": "spearman", "sites"}`` for the bars."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    items = [checks] if hasattr(checks, "spearman") else list(checks)
    if not items:
        raise InterpAFError("no attribution checks given; pass the AttributionCheck of at least one method")
    methods = [c.method for c in items]
    if len(set(methods)) < len(methods):
        raise InterpAFError(f"attribution checks {methods}: pass one check per method")
    names = [METHOD_NAMES.get(m, m) for m in methods]
    sites = list(dict.fromkeys(s for c in items for s in (*c.spearman, *c.to_frame().get("site", ()))))
    color = {s: _SITE_COLORS[i % len(_SITE_COLORS)] for i, s in enumerate(sites)}
    fig = make_subplots(rows=1, cols=len(items) + 1, column_widths=[1.0] * len(items) + [0.8],
                        subplot_titles=[f"{n} vs exact" for n in names] + ["Spearman per site"],
                        horizontal_spacing=0.08)
    for col, (check, name) in enumerate(zip(items, names), start=1):
        df = check.to_frame()
        for site in sites:
            g = df[df["site"] == site] if len(df) else df
            if g.empty:
                continue
            rho = check.spearman.get(site, float("nan"))
            fig.add_trace(go.Scatter(
                x=g["estimate"].to_numpy(), y=g["exact"].to_numpy(), mode="markers",
                name=plot_text(f"{site}"), legendgroup=site, showlegend=col == 1,
                marker=dict(color=color[site], size=7, opacity=0.8),
                meta={"method": check.method, "site": site, "spearman": rho, "role": "cells"},
                text=[plot_text(_cell_label(r)) for _, r in g.iterrows()],
                hovertemplate=plot_text(f"{name} · {site} (Spearman {rho:.2f})") +
                "<br>%{text}<br>estimate %{x:.3f}<br>exact %{y:.3f}<extra></extra>"), row=1, col=col)
        if len(df):
            lo = float(min(df["estimate"].min(), df["exact"].min()))
            hi = float(max(df["estimate"].max(), df["exact"].max()))
            fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line=dict(dash="dot", color="grey"),
                                     name="y = x", legendgroup="y=x", showlegend=col == 1, hoverinfo="skip",
                                     meta={"method": check.method, "role": "diagonal"}), row=1, col=col)
        fig.update_xaxes(title_text=f"{name} estimate", row=1, col=col)
        fig.update_yaxes(title_text="exact patching" if col == 1 else None, row=1, col=col)
    bar_colors = ("#9ecae9", "#3182bd", "#08519c")
    for i, (check, name) in enumerate(zip(items, names)):
        rho = [check.spearman.get(s, float("nan")) for s in sites]
        fig.add_trace(go.Bar(
            x=[plot_text(s) for s in sites], y=rho, name=f"Spearman, {name}", marker_color=bar_colors[i % 3],
            text=["n/a" if np.isnan(r) else f"{r:.2f}" for r in rho], textposition="outside",
            meta={"method": check.method, "role": "spearman", "sites": sites},
            hovertemplate=plot_text(name) + " %{x}: Spearman %{y:.3f}<extra></extra>"), row=1, col=len(items) + 1)
    fig.update_yaxes(range=[-1.1, 1.15], title_text="rank correlation with exact", row=1, col=len(items) + 1)
    fig.update_layout(
        title=plot_text(title or "Attribution patching vs exact patching on the top cells of each site"),
        template="plotly_white", height=480, barmode="group", legend=dict(orientation="h", y=-0.25),
        margin=dict(b=120))
    return fig
