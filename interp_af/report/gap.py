"""Figure of the compliance gap: compliance per arm with paired-bootstrap intervals, and the gap itself.

Written as HTML (see :mod:`interp_af.report.figures`: plotly.js inlined or shared per run folder); a PNG is
added when kaleido finds a Chrome (set ``BROWSER_PATH``), and silently skipped otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from interp_af.report.labels import plot_text

if TYPE_CHECKING:
    from interp_af.analysis.gap import GapResult


def gap_figure(result: "GapResult", title: str | None = None):
    """Two panels: compliance per arm (bars, 95% intervals) and the gap between the first two arms."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    arms = list(result.arms)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.7, 0.3], subplot_titles=(
        "compliance per arm", plot_text(f"gap ({arms[0]} - {arms[1]})")))
    # one series per query group (harmful / benign control) when both are present, else the headline numbers
    series = dict(result.groups) or {result.scope: {
        "compliance": result.compliance, "compliance_ci": result.compliance_ci, "gap": result.gap,
        "gap_ci": result.gap_ci, "n_queries": result.n_queries}}
    colours = {"harmful": "#4C78A8", "all": "#4C78A8", "benign": "#9ECAE9"}
    for name, g in series.items():
        comp = [g["compliance"][a] for a in arms]
        lo = [g["compliance"][a] - g["compliance_ci"][a][0] for a in arms]
        hi = [g["compliance_ci"][a][1] - g["compliance"][a] for a in arms]
        colour = colours.get(name, "#4C78A8")
        fig.add_trace(go.Bar(x=[plot_text(a) for a in arms], y=comp, name=f"{name} (n={g['n_queries']})",
                             marker_color=colour, meta={"group": name, "role": "compliance", "arms": arms},
                             error_y=dict(type="data", symmetric=False, array=hi, arrayminus=lo),
                             text=[f"{c:.0%}" for c in comp], textposition="outside", legendgroup=name),
                      row=1, col=1)
        fig.add_trace(go.Bar(x=[name], y=[g["gap"]], marker_color=colour, showlegend=False, legendgroup=name,
                             meta={"group": name, "role": "gap"},
                             error_y=dict(type="data", symmetric=False, array=[g["gap_ci"][1] - g["gap"]],
                                          arrayminus=[g["gap"] - g["gap_ci"][0]]),
                             text=[f"{g['gap']:+.0%}"], textposition="outside"), row=1, col=2)
    fig.update_yaxes(title_text="fraction compliant", tickformat=".0%", range=[0, 1.05], row=1, col=1)
    fig.update_yaxes(title_text="difference", tickformat="+.0%", row=1, col=2)
    model = result.config.get("model", "")
    fig.update_layout(
        title=plot_text(title or f"Compliance gap: {model} ({result.metric} metric, n={result.n_queries} queries "
                                 "per arm)"),
        showlegend=len(series) > 1, barmode="group", template="plotly_white", height=450)
    return fig


def write_gap_figure(result: "GapResult", out_dir: str | Path, stem: str = "gap", *,
                     js: str | Path | None = None) -> list[Path]:
    """Write ``<stem>.html`` (always) and ``<stem>.png`` (when a Chrome is available); returns the paths.
    ``js``: the run folder's shared plotly.js (default: inlined)."""
    from interp_af.report.figures import write_figure

    return write_figure(gap_figure(result), Path(out_dir) / stem, js=js)


def _contrast_row(value: Any) -> Mapping[str, Any] | None:
    """(gap, gap_ci, arms) of one variant's harmful-request gap: from a GapResult, or from the gap stage's
    summary entry ``{"harmful": {...}, "benign": {...}}`` (the form today's report.html passes)."""
    if hasattr(value, "gap_ci"):
        return {"gap": value.gap, "gap_ci": tuple(value.gap_ci), "arms": tuple(value.arms[:2]),
                "n": value.n_queries}
    h = value.get("harmful") if isinstance(value, Mapping) else None
    if not h:
        return None
    return {"gap": h["gap"], "gap_ci": tuple(h["gap_ci"]), "arms": tuple(h.get("arms", ())), "n": h.get("n")}


def contrast_figure(variants: "Mapping[str, GapResult] | Mapping[str, Mapping]", main: str,
                    title: str | None = None):
    """The gap (harmful requests, first arm minus second) of the main variant and each contrast, with 95%
    paired-bootstrap intervals: the figure that says what the gap depends on.

    ``variants``: ``{variant: GapResult}`` (the harmful-request result of each variant); the gap stage's summary
    ``{variant: {"harmful": {...}}}`` is read too. One bar per variant, the main one first; the bar trace
    carries ``meta = {"variants": [...], "main": main}``."""
    import plotly.graph_objects as go

    names = [main, *[v for v in variants if v != main]]
    rows = [(v, r) for v in names if v in variants and (r := _contrast_row(variants[v])) is not None]
    gaps = [r["gap"] for _, r in rows]
    hover = [plot_text(f"{v}: {r['arms'][0]} - {r['arms'][1]}" if len(r["arms"]) == 2 else v) for v, r in rows]
    fig = go.Figure(go.Bar(
        x=[plot_text(v) for v, _ in rows], y=gaps, text=[f"{g:+.0%}" for g in gaps], textposition="outside",
        marker_color=["#4c78a8" if v == main else "#9ecae9" for v, _ in rows],
        meta={"variants": [v for v, _ in rows], "main": main}, customdata=hover,
        hovertemplate="%{customdata}<br>gap %{y:+.1%}<extra></extra>",
        error_y=dict(type="data", symmetric=False, array=[r["gap_ci"][1] - r["gap"] for _, r in rows],
                     arrayminus=[r["gap"] - r["gap_ci"][0] for _, r in rows]),
        name="harmful-request gap"))
    fig.add_hline(y=0, line_color="#444", line_width=1)
    fig.update_layout(title=plot_text(title or "Compliance gap (free - paid) on harmful requests, by condition "
                                               "(95% CI)"),
                      yaxis=dict(title="gap", tickformat="+.0%", range=[-1.15, 1.15]), template="plotly_white",
                      height=450, showlegend=False)
    return fig
