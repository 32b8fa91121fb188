"""Figures in a Jupyter notebook, and a notebook's HTML export that works offline.

**In the notebook.** :func:`show_figures` makes every plotly figure display as two outputs in one bundle:
the figure's JSON (``application/vnd.plotly.v1+json``: live and zoomable in JupyterLab, a few kB) and a PNG
(kaleido, when a Chrome is present: what GitHub and plain viewers show). plotly's own ``notebook`` renderer
would instead put the 4.8 MB plotly.js into the notebook's first output.

**The HTML export.** nbconvert's ``lab`` template loads require.js, MathJax and mermaid from a CDN, and it
does not draw plotly's JSON output at all: opened offline, the page shows PNGs and logs failed loads.
:func:`export_html` converts each plotly output into a plotly ``<div>`` (the PNG beside it is then
dropped), drops the CDN scripts, and loads plotly.js once: a shared ``plotly.min.js`` beside the page (the
run folder's, by default) or inlined (``js=None``) for a single file to share.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

PLOTLY_MIME = "application/vnd.plotly.v1+json"
TEMPLATE = Path(__file__).with_name("templates") / "notebook.html.j2"


def _ignored_pipe_message(record: logging.LogRecord) -> bool:
    return "JSONError decoding message. Ignoring" not in record.getMessage()


def show_figures(png: bool | None = None, width: int | None = None) -> str:
    """Set plotly's default renderer for this kernel: the figure's JSON plus, when ``png`` (default: a
    Chrome is present and ``INTERP_AF_PNG`` is not 0), a PNG ``width`` CSS pixels wide. Returns the
    renderer's name."""
    import warnings

    import plotly.io as pio

    from interp_af.report.figures import PNG_WIDTH, png_enabled

    # libraries below us (transformers, sae-lens) import tqdm.auto, which warns in a kernel without
    # ipywidgets and falls back to the text bar: import it once here with that one warning off
    from tqdm import TqdmWarning

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "IProgress not found", TqdmWarning)
        import tqdm.auto  # noqa: F401
    name = "plotly_mimetype+png" if (png_enabled() if png is None else png) else "plotly_mimetype"
    if "png" in name:
        # kaleido's Chrome pipe logs a traceback for each partial message it then ignores (the image is fine):
        # keep that one record out of the notebook's output, every other log record stays
        # (import the module first: it makes that logger with its own Logger class, which getLogger must not
        # pre-empt with a plain one)
        try:
            import choreographer.channels.pipe  # noqa: F401
        except ImportError:
            pass
        logging.getLogger("choreographer.channels.pipe").addFilter(_ignored_pipe_message)
    pio.renderers["png"].width = width or PNG_WIDTH
    pio.renderers.default = name
    return name


def _plotly_outputs(nb: Any) -> int:
    """Replace each plotly JSON output of ``nb`` by a plotly ``<div>`` (in place); returns how many."""
    import plotly.graph_objects as go
    import plotly.io as pio

    from interp_af.report.figures import PLOTLY_CONFIG

    n = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if PLOTLY_MIME not in data:
                continue
            fig = go.Figure(data[PLOTLY_MIME])
            fig.update_layout(width=None, autosize=True)
            html = pio.to_html(fig, include_plotlyjs=False, full_html=False, config=PLOTLY_CONFIG,
                               default_width="100%", div_id=f"interp-af-figure-{n}")
            out["data"] = {"text/html": html, "text/plain": data.get("text/plain", "plotly figure")}
            n += 1
    return n


def export_html(notebook: str | Path | Any, out: str | Path, *, js: str | Path | None | bool = True) -> tuple[Path, int]:
    """Write ``notebook`` (a path or a notebook node, with outputs) as an HTML page at ``out`` whose plotly
    figures render offline. ``js``: True = a shared ``plotly.min.js`` beside ``out``; a path = that file
    (referenced relatively); None = plotly.js inlined. Returns (the page, how many plotly figures it holds).
    Needs nbconvert (a dev dependency)."""
    import nbformat

    from interp_af.errors import InterpAFError
    from interp_af.report.figures import atomic_write, ensure_plotlyjs, plotlyjs, script_src

    try:
        from nbconvert import HTMLExporter
    except ImportError:
        raise InterpAFError("exporting a notebook needs nbconvert: pip install nbconvert") from None
    out = Path(out)
    nb = nbformat.read(str(notebook), as_version=4) if isinstance(notebook, (str, Path)) else copy.deepcopy(notebook)
    n = _plotly_outputs(nb)
    if js is None or js is False:
        head = "<script type=\"text/javascript\">" + plotlyjs() + "</script>"
    else:
        shared = out.parent / "plotly.min.js" if js is True else Path(js)
        ensure_plotlyjs(shared)
        head = f'<script src="{script_src(shared, out)}"></script>'
    exporter = HTMLExporter(template_name="lab", template_file=str(TEMPLATE))
    body, _ = exporter.from_notebook_node(nb, resources={"plotly_head": head})
    atomic_write(out, body)
    return out, n
