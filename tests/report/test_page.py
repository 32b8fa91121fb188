"""The report page: header, verdicts first and coloured, a findings table whose links land on figures, a table
of contents, everything escaped, figures that fill the width, plotly.js once or shared."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from interp_af.errors import InterpAFError
from interp_af.report.figures import plotlyjs
from interp_af.report.page import FigureBlock, Finding, PageHeader, Section, render_page

from .pages import FINDINGS, HEADER, HOSTILE, N_FIGURES, VERDICT_ROWS, page, sections

BANNER = plotlyjs()[:60]


class Doc(HTMLParser):
    """ids, links, scripts and the text of each table row, as a browser would parse them."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.ids: list[str] = []
        self.hrefs: list[str] = []
        self.srcs: list[str] = []
        self.tags: list[str] = []
        self.rows: list[tuple[str, list[str]]] = []   # (tr class, cell texts)
        self.header: dict[str, str] = {}               # <dt> name -> <dd> value
        self._dt: str | None = None
        self.text: list[str] = []
        self._cell: list[str] | None = None
        self._script = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "a" and "href" in a:
            self.hrefs.append(a["href"])
        if tag == "script":
            self._script = True
            if "src" in a:
                self.srcs.append(a["src"])
        if tag == "tr":
            self.rows.append((a.get("class", ""), []))
        if tag in ("td", "th", "dt", "dd"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = False
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1][1].append("".join(self._cell).strip())
            self._cell = None
        if tag in ("dt", "dd") and self._cell is not None:
            text, self._cell = "".join(self._cell).strip(), None
            if tag == "dt":
                self._dt = text
            else:
                self.header[self._dt] = text

    def handle_data(self, data):
        if self._script:
            return
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def test_single_file_page_inlines_plotlyjs_once_and_draws_every_figure():
    text = page("inline")
    assert text.count(BANNER) == 1 and Doc(text).srcs == []
    assert text.count("Plotly.newPlot(") == N_FIGURES


def test_shared_js_page_references_the_file_and_inlines_nothing():
    text = page("../plotly.min.js")
    assert BANNER not in text and Doc(text).srcs == ["../plotly.min.js"]
    assert text.count("Plotly.newPlot(") == N_FIGURES
    assert len(text.encode()) < 1_000_000
    with pytest.raises(InterpAFError, match="inline"):
        page("")


def test_header_verdicts_and_findings_in_order():
    doc = Doc(page("plotly.min.js"))
    rows = doc.header
    assert list(rows)[:5] == ["model", "weights (sha256)", "target", "config", "seeds"]
    assert rows["model"] == HEADER.model and rows["config"] == HEADER.config_file
    assert rows["seeds"] == "all 0, probes 3" and rows["commit"] == "not a git checkout"
    for key in ("weights (sha256)", "target", "interp_af", "date", "machine", "device"):
        assert rows[key]
    verdicts = [(cls, cells) for cls, cells in doc.rows if len(cells) == 5 and cls]
    assert [c[4] for _, c in verdicts] == [v.verdict for v in VERDICT_ROWS]
    assert [cls for cls, _ in verdicts] == ["v-ruled-out", "v-supported", "v-not-supported", "v-not-tested",
                                            "v-inconclusive", "v-no-gap"]
    assert verdicts[1][1][:4] == [VERDICT_ROWS[1].explanation, VERDICT_ROWS[1].test, VERDICT_ROWS[1].measured,
                                  VERDICT_ROWS[1].margin]
    findings = [cells for cls, cells in doc.rows if len(cells) == 4 and not cls][1:]   # after the header row
    assert [f[0] for f in findings] == [f.question for f in FINDINGS]
    assert findings[0][2] == "+80.0% [+70.0%, +90.0%]" and findings[1][2] == "0.980 [0.950, 1.000]"
    assert findings[3][2] == "30% [10%, 50%]" and findings[4][2] == "not measured"
    # the verdicts come before the findings, which come before any figure
    assert doc.ids.index("verdicts") < doc.ids.index("findings") < min(i for i, x in enumerate(doc.ids)
                                                                        if x.startswith("sec-"))


def test_every_link_lands_on_an_anchor_and_the_toc_lists_every_figure():
    doc = Doc(page("plotly.min.js"))
    assert len(doc.ids) == len(set(doc.ids)), "duplicate ids"
    for href in doc.hrefs:
        assert href.startswith("#") and href[1:] in doc.ids, href
    for f in FINDINGS:
        if f.figure:
            assert f"#fig-{f.figure}" in doc.hrefs
    blocks = [b for s in sections() for b in s.figures]
    assert all(f"#fig-{b.key}" in doc.hrefs for b in blocks)
    assert all(f"#sec-{s.key}" in doc.hrefs for s in sections())


def test_no_user_string_reaches_the_page_as_markup():
    text = page("inline")
    outside_js = text.replace(plotlyjs(), "")
    doc = Doc(outside_js)
    assert "img" not in doc.tags                          # the hostile <img onerror> never became a tag
    assert outside_js.count("<script") == 1 + N_FIGURES    # plotly.js + one per figure, none injected
    bodies = re.findall(r"<script[^>]*>(.*?)</script>", outside_js, flags=re.S)
    assert len(bodies) == 1 + N_FIGURES
    assert any("onerror=alert" in b for b in bodies)      # a figure holds the hostile token, as JSON data...
    assert not any("<img" in b or "<script" in b for b in bodies)   # ...escaped: it cannot open a tag
    assert HOSTILE in "".join(doc.text)                   # shown, as text, where it was put
    assert HEADER.config_file in "".join(doc.text)


def test_figures_fill_the_page_width():
    text = page("plotly.min.js")
    for m in re.finditer(r'Plotly\.newPlot\(\s*"([^"]+)",\s*(\[.*?\]),\s*(\{.*?\}),\s*(\{[^{}]*\})\s*\)', text, re.S):
        layout, config = json.loads(m.group(3)), json.loads(m.group(4))
        assert "width" not in layout and config["responsive"] is True, m.group(1)
    assert len(re.findall(r"Plotly\.newPlot\(", text)) == N_FIGURES


def test_missing_and_broken_figures_say_so():
    doc = Doc(page("plotly.min.js"))
    text = "".join(doc.text)
    assert "figure unavailable: ZeroDivisionError" in text and "no result for this figure in this run" in text


def test_bad_keys_and_dangling_links_are_refused():
    s = [Section("a", "A", (FigureBlock("f1", "F", None, "-", "-"),))]
    with pytest.raises(InterpAFError, match="no section has"):
        render_page(HEADER, [], [Finding("q", "m", 1.0, figure="nope")], s, js="inline")
    with pytest.raises(InterpAFError, match="used twice"):
        render_page(HEADER, [], [], s + s, js="inline")
    with pytest.raises(InterpAFError, match="anchor"):
        render_page(HEADER, [], [], [Section("a b", "A")], js="inline")
    # mappings work as verdict rows too, and an unknown verdict is drawn neutral
    text = render_page(HEADER, [{"explanation": "e", "test": "t", "measured": "m", "margin": "", "verdict": "maybe"}],
                       [], s, js="inline")
    assert 'class="v-other"' in text


def test_header_collect_fills_version_commit_date_machine(tmp_path):
    h = PageHeader.collect(model="m", weights_hash="h", target="t", config_file="c.toml", seeds={"all": 0},
                           device="cpu")
    assert h.version and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", h.date) and "CPUs" in h.machine
    from interp_af.report.provenance import git_commit

    assert git_commit(tmp_path) is None                   # not a checkout: no commit, no error
    assert h.commit is None or re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", h.commit)


def test_write_page_shared_beside_it_or_single_file(tmp_path):
    from interp_af.report.page import write_page

    s = [Section("a", "A", (FigureBlock("f1", "F", None, "-", "-"),))]
    shared = write_page(tmp_path / "run" / "report.html", HEADER, VERDICT_ROWS, [], s)
    assert Doc(shared.read_text()).srcs == ["plotly.min.js"]
    assert (tmp_path / "run" / "plotly.min.js").read_text() == plotlyjs()
    single = write_page(tmp_path / "share" / "report.html", HEADER, VERDICT_ROWS, [], s, inline=True)
    assert single.read_text().count(BANNER) == 1 and not (tmp_path / "share" / "plotly.min.js").exists()
    nested = write_page(tmp_path / "run" / "pages" / "r.html", HEADER, [], [], s, js=tmp_path / "run" / "plotly.min.js")
    assert Doc(nested.read_text()).srcs == ["../plotly.min.js"]
