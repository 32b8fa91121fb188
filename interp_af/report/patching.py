"""Figures of patching and attribution results.

- :func:`patch_heatmap`: layer x position (the prompt's tokens as x labels) for residual/sub-layer sites, or
  layer x head for ``head_out``; colour = normalised effect (0 = unpatched, 1 = the other arm), hover shows the
  query-bootstrap interval. Cells that were skipped because they are provably zero are drawn blank-white.
- :func:`attribution_scatter`: attribution estimate vs exact effect per cell, one colour per site type, with
  the Spearman correlation in the legend.

HTML always (plotly.js embedded, opens offline); PNG only when kaleido finds a Chrome.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from interp_af.analysis.attribution import AttributionCheck
    from interp_af.analysis.patching import PatchResult


def write_figure(fig, out_dir: str | Path, stem: str) -> list[Path]:
    """``<out_dir>/<stem>.html`` always, ``.png`` when a Chrome is available (see :mod:`interp_af.report.figures`)."""
    from interp_af.report.figures import write_figure as _write

    return _write(fig, Path(out_dir) / stem)


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
        if first_column is None:
            cols = mask.any(0).nonzero()
            first_column = max(int(cols[0]) - 3, 0) if len(cols) else 0
        z, zl, zh, mask, x = z[:, first_column:], zl[:, first_column:], zh[:, first_column:], \
            mask[:, first_column:], x[first_column:]
    z_show = z.clone().float()
    z_show[~mask] = float("nan")
    text = [[f"{z[i, j]:+.3f} [{zl[i, j]:+.3f}, {zh[i, j]:+.3f}]" if mask[i, j] else "0 (identical in both arms)"
             for j in range(z.shape[1])] for i in range(z.shape[0])]
    bound = max(1.0, float(z.abs().max())) if z.numel() else 1.0
    fig = go.Figure(go.Heatmap(z=z_show.tolist(), x=x, y=layers, text=text, hovertemplate="%{y} %{x}: %{text}<extra></extra>",
                               colorscale="RdBu", zmid=0, zmin=-bound, zmax=bound,
                               colorbar=dict(title="effect"), xgap=1, ygap=1))
    what = result.info.get("method", "exact")
    fig.update_layout(
        title=title or (f"{what} patching: {result.site} ({result.direction}, clean = {result.clean_arm}, "
                        f"n = {len(result.query_ids)} queries); 0 = unpatched, 1 = other arm"),
        xaxis=dict(title=x_title, type="category", tickangle=-60), yaxis=dict(title="layer", autorange="reversed"),
        template="plotly_white", height=250 + 28 * len(layers), width=max(600, min(2400, 24 * len(x) + 250)))
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
                                 text=label, hovertemplate="%{text}<br>estimate %{x:.3f}<br>exact %{y:.3f}<extra></extra>"))
    if len(df):
        lo, hi = float(min(df.estimate.min(), df.exact.min())), float(max(df.estimate.max(), df.exact.max()))
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line=dict(dash="dot", color="grey"),
                                 name="y = x", hoverinfo="skip"))
    fig.update_layout(title=title or f"{check.method} vs exact patching (normalised effect)",
                      xaxis_title="attribution estimate", yaxis_title="exact patching", template="plotly_white",
                      height=500, width=650)
    return fig
