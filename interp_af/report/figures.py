"""Writing a plotly figure: HTML always (plotly.js inlined, or one shared copy per run folder), a PNG beside it
when a Chrome is available. Every write is atomic: a full disk leaves the old file or none, never half of one.

**plotly.js once per folder.** plotly.js weighs 4.8 MB; inlined into each of the ~40 figures of a run it made a
toy run folder weigh 189 MB. ``write_figure(fig, path, js=run_dir / "plotly.min.js")`` writes the script once
(:func:`ensure_plotlyjs`) and references it by a *relative* ``src``, so the folder can be moved or zipped and
still opens offline. Without ``js`` the figure is a stand-alone file (plotly.js inlined), for sharing.

**Width.** Figures never fix a width: ``autosize`` with ``{"responsive": true}`` makes each one fill its
container (the window, or a report column) and follow resizes. :func:`fit_width` enforces it on any figure.

**PNG.** plotly 7 renders static images through kaleido 1.x, which drives a Chrome. kaleido does not find
Debian's ``chromium-headless-shell`` by itself (it wants ``BROWSER_PATH``), so :func:`png_enabled` points it
there. Without any Chrome the figure is written as HTML only, by design. ``INTERP_AF_PNG=0`` turns PNGs off
(the tests do: each image costs about two seconds).
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from interp_af.errors import InterpAFError

_CANDIDATES = ("chromium-headless-shell", "/usr/lib/chromium/chromium-headless-shell",
               "/usr/lib/chromium-headless-shell/chromium-headless-shell", "chromium", "google-chrome", "chrome")
PLOTLY_CONFIG = {"responsive": True, "displaylogo": False}
PNG_WIDTH = 1000   # CSS pixels of a PNG export (the HTML has no fixed width; a picture needs one)


def _find_chrome() -> str | None:
    for name in _CANDIDATES:
        found = shutil.which(name) or (name if os.path.isfile(name) else None)
        if found:
            return found
    return None


def _browser_path() -> bool:
    """Point kaleido at a Chrome (``BROWSER_PATH``) unless one is set already; False when there is none."""
    if not os.environ.get("BROWSER_PATH"):
        chrome = _find_chrome()
        if chrome is None:
            return False
        os.environ["BROWSER_PATH"] = chrome
    return True


def png_enabled() -> bool:
    """PNGs are written unless ``INTERP_AF_PNG=0`` or no Chrome is found."""
    if os.environ.get("INTERP_AF_PNG", "1") == "0":
        return False
    return _browser_path()


# ---------------------------------------------------------------------------------------------- atomic files
def atomic_write(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``: readers see
    the old file or the new one, and a failed write (disk full) removes its temporary file and raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)   # mkstemp makes 0600 files; a figure is for reading
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# ---------------------------------------------------------------------------------------------- plotly.js
@functools.cache
def plotlyjs() -> str:
    """The plotly.js bundle that ships with the installed plotly (the one its figures' JSON is written for)."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def _is_plotlyjs(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(64).startswith(b"/**\n* plotly.js v")


def ensure_plotlyjs(path: str | Path) -> Path:
    """Make ``path`` hold this plotly's ``plotly.min.js``: written once, left alone when it already matches,
    replaced when it is another plotly.js version. A file there that is not a plotly.js is not ours to
    overwrite: an :class:`InterpAFError` says so."""
    path = Path(path)
    js = plotlyjs().encode("utf-8")
    if path.exists():
        if not path.is_file() or not _is_plotlyjs(path):
            raise InterpAFError(f"{path} exists and is not a plotly.js bundle; pass another js= path for the "
                                "shared plotly.js (interp_af never overwrites a file it did not write)")
        # same size and same banner (the version line) = the same bundle; reading 4.8 MB per figure is waste
        with open(path, "rb") as f:
            if path.stat().st_size == len(js) and f.read(96) == js[:96]:
                return path
    return atomic_write(path, js)


def script_src(js: str | Path, html_path: str | Path) -> str:
    """The relative URL of the shared ``js`` file as seen from ``html_path`` (percent-quoted: a folder name
    with a space, ``#`` or a quote still makes a valid ``src``)."""
    from urllib.parse import quote

    rel = os.path.relpath(Path(js).resolve(), Path(html_path).resolve().parent)
    return quote(Path(rel).as_posix())


# ---------------------------------------------------------------------------------------------- HTML
def fit_width(fig: Any) -> Any:
    """A copy of ``fig`` without a fixed width (``autosize``): it fills the width of whatever holds it."""
    import plotly.graph_objects as go

    out = go.Figure(fig)
    out.update_layout(width=None, autosize=True)
    return out


def figure_div(fig: Any, div_id: str | None = None) -> str:
    """The ``<div>`` + ``<script>`` of one figure, without plotly.js (the page loads it once). plotly's JSON
    escapes ``<``, ``>`` and ``/``, so no string in the figure can close the script."""
    fig = fit_width(fig)
    height = fig.layout.height
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=PLOTLY_CONFIG,
                       default_width="100%", default_height=f"{int(height)}px" if height else "460px")


def figure_html(fig: Any, *, src: str | None = None) -> str:
    """A complete HTML page for one figure: plotly.js inlined (``src=None``) or loaded from the URL ``src``."""
    fig = fit_width(fig)
    height = fig.layout.height
    return fig.to_html(full_html=True, include_plotlyjs=True if src is None else src, config=PLOTLY_CONFIG,
                       default_width="100%", default_height=f"{int(height)}px" if height else "100%")


def write_figure(fig: Any, path: str | Path, *, js: str | Path | None = None, png: bool | None = None) -> list[Path]:
    """Write ``<path>.html`` and, when a Chrome is present, ``<path>.png``; returns the files written.

    ``js``: where the shared ``plotly.min.js`` lives (e.g. ``run_dir / "plotly.min.js"``): it is written there
    once and the HTML loads it by a relative path. ``None`` (default): plotly.js inlined, a stand-alone file.
    ``png``: force the PNG on or off (default: :func:`png_enabled`). ``path`` may carry a suffix; it is replaced.
    """
    path = Path(path)
    html = path.with_suffix(".html")
    src = None
    if js is not None:
        if not str(js).endswith(".js"):
            raise InterpAFError(f"js={str(js)!r}: name the shared plotly.js file with a .js suffix, e.g. "
                                "run_dir / 'plotly.min.js'")
        src = script_src(ensure_plotlyjs(js), html)
    atomic_write(html, figure_html(fig, src=src))
    out = [html]
    if png_enabled() if png is None else (png and _browser_path()):
        png_path = path.with_suffix(".png")
        try:
            data = fig.to_image(format="png", scale=2, width=fig.layout.width or PNG_WIDTH)
        except Exception:  # noqa: BLE001 - a Chrome that will not start: keep the HTML, skip the PNG
            data = None
        if data is not None:
            out.append(atomic_write(png_path, data))
    return out
