"""Figure of the compliance gap: compliance per arm with paired-bootstrap intervals, and the gap itself.

Written as self-contained HTML (plotly.js embedded, so it opens offline); a PNG is added when kaleido finds
a Chrome (set ``BROWSER_PATH``), and silently skipped otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from interp_af.analysis.gap import GapResult


def gap_figure(result: "GapResult", title: str | None = None):
    """Two panels: compliance per arm (bars, 95% intervals) and the gap between the first two arms."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    arms = list(result.arms)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.7, 0.3], subplot_titles=(
        "compliance per arm", f"gap ({arms[0]} - {arms[1]})"))
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
        fig.add_trace(go.Bar(x=arms, y=comp, name=f"{name} (n={g['n_queries']})", marker_color=colour,
                             error_y=dict(type="data", symmetric=False, array=hi, arrayminus=lo),
                             text=[f"{c:.0%}" for c in comp], textposition="outside", legendgroup=name),
                      row=1, col=1)
        fig.add_trace(go.Bar(x=[name], y=[g["gap"]], marker_color=colour, showlegend=False, legendgroup=name,
                             error_y=dict(type="data", symmetric=False, array=[g["gap_ci"][1] - g["gap"]],
                                          arrayminus=[g["gap"] - g["gap_ci"][0]]),
                             text=[f"{g['gap']:+.0%}"], textposition="outside"), row=1, col=2)
    fig.update_yaxes(title_text="fraction compliant", tickformat=".0%", range=[0, 1.05], row=1, col=1)
    fig.update_yaxes(title_text="difference", tickformat="+.0%", row=1, col=2)
    model = result.config.get("model", "")
    fig.update_layout(
        title=title or f"Compliance gap: {model} ({result.metric} metric, n={result.n_queries} queries per arm)",
        showlegend=len(series) > 1, barmode="group", template="plotly_white", height=450, width=850)
    return fig


def write_gap_figure(result: "GapResult", out_dir: str | Path, stem: str = "gap") -> list[Path]:
    """Write ``<stem>.html`` (always) and ``<stem>.png`` (when a Chrome is available); returns the paths."""
    from interp_af.report.figures import write_figure

    return write_figure(gap_figure(result), Path(out_dir) / stem)


def contrast_figure(variants: dict, main: str, title: str | None = None):
    """The gap (harmful requests, first arm minus second) of the main variant and each contrast, with 95%
    paired-bootstrap intervals, beside benign compliance: the figure that says what the gap depends on.
    ``variants``: the gap stage's summary ``{variant: {"harmful": {...}, "benign": {...}}}``."""
    import plotly.graph_objects as go

    names = [main, *[v for v in variants if v != main]]
    rows = [(v, variants[v]["harmful"]) for v in names if "harmful" in variants[v]]
    gaps = [r["gap"] for _, r in rows]
    fig = go.Figure(go.Bar(
        x=[v for v, _ in rows], y=gaps, text=[f"{g:+.0%}" for g in gaps], textposition="outside",
        marker_color=["#4c78a8" if v == main else "#9ecae9" for v, _ in rows],
        error_y=dict(type="data", symmetric=False, array=[r["gap_ci"][1] - r["gap"] for _, r in rows],
                     arrayminus=[r["gap"] - r["gap_ci"][0] for _, r in rows]),
        name="harmful-request gap"))
    fig.add_hline(y=0, line_color="#444", line_width=1)
    fig.update_layout(title=title or "Compliance gap (free - paid) on harmful requests, by condition (95% CI)",
                      yaxis=dict(title="gap", tickformat="+.0%", range=[-1.15, 1.15]), template="plotly_white",
                      height=450, width=850, showlegend=False)
    return fig
