"""Reading a plotly figure back the way a reader sees it: which panel a trace sits in and that panel's title."""

from __future__ import annotations

import html


def panel_index(trace) -> int:
    """1-based subplot index of a trace (``x`` -> 1, ``x3`` -> 3)."""
    axis = trace.xaxis or "x"
    return int(axis[1:] or 1)


def panel_titles(fig) -> list[str]:
    """Subplot titles in subplot order (make_subplots writes them as the first annotations, row-major)."""
    return [html.unescape(a.text) for a in fig.layout.annotations]


def panel_title(fig, trace) -> str:
    return panel_titles(fig)[panel_index(trace) - 1]


def all_text(fig) -> str:
    """Title and panel titles, unescaped: what a reader sees as the figure's headings."""
    title = fig.layout.title.text or ""
    return html.unescape(title + " | " + " | ".join(panel_titles(fig)))


def no_fixed_width(fig) -> bool:
    return fig.layout.width is None
