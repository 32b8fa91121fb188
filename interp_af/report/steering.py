"""Dose-response figure of a steering run: fraction of the gap closed (and compliance per arm) against alpha,
the steered direction beside its controls (flipped, norm-matched random directions).

A direction that matters moves its curve far from 0 while the random controls stay flat near 0; if the random
curves move as much, the edit is damage, not a representation the model uses. HTML always; PNG when kaleido
finds a Chrome.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from interp_af.report.labels import plot_text

if TYPE_CHECKING:
    from interp_af.analysis.steering import SteerResult


def dose_response(result: "SteerResult", *, steered_arm: int = 1, title: str | None = None):
    """Left: fraction of the gap closed when steering ``steered_arm`` (with intervals); right: compliance of
    both arms under the direction itself."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    df = result.to_frame()
    arm_name = result.arms[steered_arm]
    fig = make_subplots(rows=1, cols=2, subplot_titles=(
        f"gap closed when steering {arm_name} prompts", "compliance per arm (direction)"))
    colours = {"direction": "#D62728", "flipped": "#1F77B4"}
    n_random = sum(c.startswith("random") for c in result.controls)
    first_random = True
    for control, g in df[df.steered_arm == steered_arm].groupby("control", sort=False):
        g = g.sort_values("alpha")
        is_random = control.startswith("random")
        # random controls: one legend entry for all of them (often 20, usually at one alpha only)
        fig.add_trace(go.Scatter(
            x=g["alpha"], y=g["closed"], mode="lines+markers",
            name=plot_text(f"random (n={n_random})" if is_random else control),
            meta={"control": control, "steered_arm": steered_arm, "role": "closed"},
            line=dict(color=colours.get(control, "#999999"), dash="dot" if is_random else "solid"),
            marker=dict(size=5 if is_random else 7, opacity=0.6 if is_random else 1.0),
            error_y=dict(type="data", symmetric=False, array=(g["closed_hi"] - g["closed"]).tolist(),
                         arrayminus=(g["closed"] - g["closed_lo"]).tolist(), visible=not is_random),
            legendgroup="random" if is_random else control, showlegend=not is_random or first_random,
            hovertext=control), row=1, col=1)
        first_random = first_random and not is_random
    own = df[df.control == "direction"]
    for arm, g in own.groupby("arm", sort=False):
        g = g.sort_values("alpha")
        fig.add_trace(go.Scatter(x=g["alpha"], y=g["compliance"], mode="lines+markers",
                                 name=plot_text(f"{arm} (steered)"), legendgroup=f"arm-{arm}",
                                 meta={"arm": arm, "role": "compliance"}), row=1, col=2)
        fig.add_trace(go.Scatter(x=[g["alpha"].min(), g["alpha"].max()], y=[g["base_compliance"].iloc[0]] * 2,
                                 mode="lines", line=dict(dash="dash"), name=plot_text(f"{arm} (unsteered)"),
                                 legendgroup=f"arm-{arm}", meta={"arm": arm, "role": "unsteered"}), row=1, col=2)
    fig.add_hline(y=0, line_color="grey", line_width=1, row=1, col=1)
    fig.add_hline(y=1, line_color="grey", line_width=1, line_dash="dot", row=1, col=1)
    fig.update_xaxes(title_text="alpha (multiples of the direction)")
    fig.update_yaxes(title_text="fraction of gap closed (0 = none, 1 = other arm)", row=1, col=1)
    fig.update_yaxes(title_text="P(accept) two-way", tickformat=".0%", range=[0, 1.02], row=1, col=2)
    cos = "" if result.cue_cosine is None else f", cosine with cue embedding diff {result.cue_cosine:+.2f}"
    fig.update_layout(title=plot_text(title or (f"Steering {result.op} at {result.site} layers {list(result.layers)}, "
                                                f"positions {result.positions} (n = {len(result.query_ids)} "
                                                f"queries{cos})")),
                      template="plotly_white", height=480)
    return fig
