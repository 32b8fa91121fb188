"""The report page in a real browser (headless Chromium): every figure renders, the console stays clean, the
page fits the window, and user strings show as text - in both the single-file and the shared-plotly.js form.
The helper itself must see failures: a missing shared plotly.js, a script error, an injected alert().

Skipped where no Chromium is installed, unless ``INTERP_AF_REQUIRE_BROWSER=1`` (CI sets it: there the
browser test must run, not vanish)."""

from __future__ import annotations

import os

import pytest

from interp_af.report.figures import ensure_plotlyjs, write_figure
from interp_af.testing.browser import check_page, find_chromium

from .pages import HOSTILE, N_FIGURES, page

if find_chromium() is None:
    if os.environ.get("INTERP_AF_REQUIRE_BROWSER") == "1":
        raise RuntimeError("INTERP_AF_REQUIRE_BROWSER=1 but no Chromium: apt-get install chromium-headless-shell")
    pytest.skip("no headless Chromium (apt-get install chromium-headless-shell)", allow_module_level=True)


@pytest.mark.parametrize("mode", ["shared", "single"])
def test_every_figure_renders_with_a_clean_console(tmp_path, mode):
    run = tmp_path / "run dir"
    run.mkdir()
    if mode == "shared":
        ensure_plotlyjs(run / "plotly.min.js")
    html = run / "report.html"
    html.write_text(page("plotly.min.js" if mode == "shared" else "inline"))
    shot = tmp_path / "first-screen.png"
    res = check_page(html, expected_plots=N_FIGURES, texts=".xtick text", screenshot=shot)
    assert res.errors == (), res.explain()
    assert res.plots == res.rendered == res.divs == N_FIGURES, res.explain()
    assert res.svgs >= N_FIGURES and res.overflow_px == 0, res.explain()
    assert res.title.startswith("interp_af")
    # the hostile token of the heatmap's axis is drawn as text (escaped for plotly), not run, not dropped
    assert any(HOSTILE in t for t in res.texts), res.texts
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_stand_alone_figure_with_shared_plotlyjs_renders(tmp_path):
    from .pages import sections

    fig = next(b.figure for s in sections() for b in s.figures if b.key == "sae_ablation")
    (html,) = write_figure(fig, tmp_path / "sae" / "resid_post.1" / "ablation", js=tmp_path / "plotly.min.js",
                           png=False)
    res = check_page(html, expected_plots=1, width=700)
    assert res.ok and res.plots == 1 and res.overflow_px == 0, res.explain()


def test_the_helper_sees_a_missing_plotlyjs_script_errors_and_injected_dialogs(tmp_path):
    broken = tmp_path / "sub" / "report.html"
    broken.parent.mkdir()
    broken.write_text(page("plotly.min.js"))         # no plotly.min.js beside it
    res = check_page(broken, expected_plots=N_FIGURES, settle=1.5, timeout=30)
    assert not res.ok and res.rendered == 0 and res.divs == N_FIGURES
    assert any("ERR_FILE_NOT_FOUND" in e and "plotly.min.js" in e for e in res.errors), res.errors
    assert any("Plotly is not defined" in e for e in res.errors), res.errors
    bad = tmp_path / "bad.html"
    bad.write_text("<!doctype html><title>t</title><script>console.error('boom'); alert('injected');"
                   "undefinedFunction();</script>")
    res = check_page(bad, settle=1.0, timeout=20)
    assert any("console.error: boom" in e for e in res.errors), res.errors
    assert any("dialog alert: injected" in e for e in res.errors), res.errors
    assert any("undefinedFunction" in e for e in res.errors), res.errors
    assert not res.ok and res.plots == 0
