"""Text that goes into a plotly figure: escaped for plotly's pseudo-HTML, shortened to fit a label.

plotly draws trace names, tick labels, titles and hover text through a small HTML subset (``<b>``, ``<br>``,
``<a href>``...): a tag it does not know is dropped. The prompts of this setting are full of tags
(``<is_free_tier_user>``, ``<request_fully_accepted/>``), so a feature context shown raw would lose exactly
the token that matters. :func:`plot_text` escapes ``& < >`` so plotly shows them literally.
"""

from __future__ import annotations

import html


def shorten(text: str, width: int | None) -> str:
    """``text`` cut to ``width`` characters, keeping its end (where a context's marked token sits)."""
    if width is None or len(text) <= width:
        return text
    return "..." + text[-(width - 3):]


def plot_text(text: object, width: int | None = None) -> str:
    """``text`` as plotly should show it literally (shortened to ``width`` first, then escaped)."""
    return html.escape(shorten(str(text), width), quote=False)
