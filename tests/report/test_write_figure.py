"""Writing figures: stand-alone (plotly.js inlined) by default, one shared plotly.js per folder on request
(referenced relatively, so the folder moves), atomic (a full disk leaves no truncated HTML), PNG when asked."""

from __future__ import annotations

import errno
import os
import re
import shutil

import pytest

from interp_af.errors import InterpAFError
from interp_af.report import figures
from interp_af.report.figures import ensure_plotlyjs, plotlyjs, script_src, write_figure


def _fig(height=None):
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2], name="s"))
    fig.update_layout(width=900, height=height)     # a fixed width must not survive into the HTML
    return fig


def _src(html: str) -> list[str]:
    return re.findall(r'<script[^>]*\bsrc="([^"]+)"', html)


def test_default_is_a_stand_alone_file_with_plotlyjs_inlined(tmp_path):
    (html,) = write_figure(_fig(), tmp_path / "a", png=False)
    text = html.read_text()
    assert html.name == "a.html" and plotlyjs()[:200] in text and _src(text) == []
    assert '"width":900' not in text and '"responsive": true' in text


def test_shared_plotlyjs_is_written_once_and_referenced_relatively(tmp_path):
    run = tmp_path / "run dir"                      # a space: the src must stay a valid relative URL
    js = run / "plotly.min.js"
    a = write_figure(_fig(), run / "gap" / "gap", js=js, png=False)[0]
    b = write_figure(_fig(), run / "sae" / "resid_post.1" / "bars", js=js, png=False)[0]
    c = write_figure(_fig(), run / "top", js=js, png=False)[0]
    assert js.read_text() == plotlyjs()
    mtime = js.stat().st_mtime_ns
    write_figure(_fig(), run / "again", js=js, png=False)
    assert js.stat().st_mtime_ns == mtime           # not rewritten: it already holds this plotly.js
    assert _src(a.read_text()) == ["../plotly.min.js"]
    assert _src(b.read_text()) == ["../../plotly.min.js"]
    assert _src(c.read_text()) == ["plotly.min.js"]
    for h in (a, b, c):
        assert len(h.read_bytes()) < 50_000         # the figure only: plotly.js (4.8 MB) lives once beside it
        assert plotlyjs()[:200] not in h.read_text()
    # relocatable: move the whole folder and every src still resolves
    moved = tmp_path / "elsewhere"
    shutil.move(run, moved)
    for h in moved.rglob("*.html"):
        from urllib.parse import unquote

        (src,) = _src(h.read_text())
        assert (h.parent / unquote(src)).resolve() == (moved / "plotly.min.js").resolve()


def test_script_src_quotes_odd_folder_names(tmp_path):
    assert script_src(tmp_path / 'a "b"#c' / "plotly.min.js", tmp_path / "x" / "f.html") == "../a%20%22b%22%23c/plotly.min.js"


def test_shared_plotlyjs_never_overwrites_a_file_it_did_not_write(tmp_path):
    mine = tmp_path / "plotly.min.js"
    mine.write_text("// someone's own script\n")
    with pytest.raises(InterpAFError, match="not a plotly.js bundle"):
        write_figure(_fig(), tmp_path / "f", js=mine, png=False)
    assert mine.read_text() == "// someone's own script\n" and not (tmp_path / "f.html").exists()
    with pytest.raises(InterpAFError, match=".js suffix"):
        write_figure(_fig(), tmp_path / "f", js=tmp_path / "plotly", png=False)
    # another plotly.js version is replaced by this one
    old = tmp_path / "old" / "plotly.min.js"
    old.parent.mkdir()
    old.write_text("/**\n* plotly.js v1.0.0\n*/\nvar x;")
    ensure_plotlyjs(old)
    assert old.read_text() == plotlyjs()


def test_a_full_disk_leaves_the_old_file_or_none_never_half_of_one(tmp_path, monkeypatch):
    path = tmp_path / "fig"
    (html,) = write_figure(_fig(), path, png=False)
    good = html.read_bytes()
    real_fdopen = os.fdopen

    class Full:
        """A file that takes half of what it is given, then reports a full disk."""

        def __init__(self, f):
            self.f = f

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def __getattr__(self, name):
            return getattr(self.f, name)

    monkeypatch.setattr(figures.os, "fdopen", lambda fd, mode: Full(real_fdopen(fd, mode)))
    with pytest.raises(OSError, match="No space"):
        write_figure(_fig(height=300), path, png=False)
    assert html.read_bytes() == good                 # the previous figure, whole
    with pytest.raises(OSError, match="No space"):
        write_figure(_fig(), tmp_path / "new", png=False)
    with pytest.raises(OSError, match="No space"):
        write_figure(_fig(), tmp_path / "shared" / "f", js=tmp_path / "shared" / "plotly.min.js", png=False)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["fig.html"]   # no tmp, no half file


@pytest.mark.skipif(figures._find_chrome() is None, reason="no Chrome for kaleido (apt-get install chromium-headless-shell)")
def test_png_is_written_through_kaleido_when_a_chrome_is_present(tmp_path, monkeypatch):
    """The one test that renders a PNG (about two seconds of Chrome); the others keep INTERP_AF_PNG=0."""
    monkeypatch.delenv("BROWSER_PATH", raising=False)
    monkeypatch.setenv("INTERP_AF_PNG", "1")
    files = write_figure(_fig(height=400), tmp_path / "p", js=tmp_path / "plotly.min.js")
    assert [f.name for f in files] == ["p.html", "p.png"]
    data = files[1].read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (2 * 900, 2 * 400)    # scale 2 of the figure's own size
    assert os.environ["BROWSER_PATH"]                # kaleido was pointed at the Chrome found
