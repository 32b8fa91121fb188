"""Writing a plotly figure: self-contained HTML always, a PNG beside it when a Chrome is available.

plotly 7 renders static images through kaleido 1.x, which drives a Chrome. kaleido does not find Debian's
``chromium-headless-shell`` by itself (it wants ``BROWSER_PATH``), so :func:`_find_chrome` points it there.
Without any Chrome the figure is written as HTML only, by design. ``INTERP_AF_PNG=0`` turns PNGs off (the
tests do: each image costs about two seconds).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

_CANDIDATES = ("chromium-headless-shell", "/usr/lib/chromium-headless-shell/chromium-headless-shell",
               "chromium", "google-chrome", "chrome")


def _find_chrome() -> str | None:
    for name in _CANDIDATES:
        found = shutil.which(name) or (name if os.path.isfile(name) else None)
        if found:
            return found
    return None


def png_enabled() -> bool:
    if os.environ.get("INTERP_AF_PNG", "1") == "0":
        return False
    if not os.environ.get("BROWSER_PATH"):
        chrome = _find_chrome()
        if chrome is None:
            return False
        os.environ["BROWSER_PATH"] = chrome
    return True


def write_figure(fig: Any, path: str | Path) -> list[Path]:
    """Write ``<path>.html`` (plotly.js inlined, opens offline) and ``<path>.png`` when a Chrome is present.
    ``path`` may carry a suffix; it is replaced. Returns the files written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    html = path.with_suffix(".html")
    fig.write_html(str(html), include_plotlyjs=True)
    out = [html]
    if png_enabled():
        try:
            fig.write_image(str(path.with_suffix(".png")), scale=2)
            out.append(path.with_suffix(".png"))
        except Exception:  # noqa: BLE001 - a Chrome that will not start: keep the HTML, skip the PNG
            pass
    return out
