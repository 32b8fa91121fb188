"""The report page: a header that says what produced it, the verdicts first, a findings table whose every
number links to the figure behind it, then one section per stage of figures with their captions.

:func:`render_page` turns plain values into one HTML string; it reads nothing from disk and runs no analysis.
Its inputs are typed:

- :class:`PageHeader`: model, weights hash, target, config file, seeds, interp_af version, git commit, date,
  machine and device (:meth:`PageHeader.collect` fills the last five);
- verdict rows: any objects (or mappings) with ``explanation``, ``test``, ``measured``, ``margin``,
  ``verdict``; rows are coloured by verdict (:data:`VERDICTS`);
- :class:`Finding`: a question, the measure that answers it, its value and interval, and the key of the
  :class:`FigureBlock` that shows it (checked: a finding cannot link to a figure the page lacks);
- :class:`Section` of :class:`FigureBlock` (a plotly figure and its two-line caption: what it shows, and
  what would count as evidence).

Everything is escaped by the template (Jinja2 autoescape): no query, token or path string reaches the HTML
as markup. Figures fill the page width (no fixed width; plotly ``responsive``). plotly.js is inlined once
(``js="inline"``: a single file to share) or loaded from a shared file (``js="plotly.min.js"``: a relative URL,
see :func:`interp_af.report.figures.ensure_plotlyjs`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from interp_af.errors import InterpAFError

INLINE = "inline"
DEFAULT_TITLE = "interp_af: is the compliance gap computed inside the forward pass?"
MISSING = "no result for this figure in this run"

# verdict -> CSS class; the words of the verdict table (and two older spellings of the same verdicts)
VERDICTS: dict[str, str] = {
    "supported": "supported", "not supported": "not-supported", "ruled out": "ruled-out",
    "inconclusive": "inconclusive", "no gap to explain": "no-gap", "not tested": "not-tested",
    "supports": "supported", "rules out": "ruled-out",
}
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")


@dataclass(frozen=True)
class PageHeader:
    """What produced the page. ``commit`` is None outside a git checkout; ``seeds`` maps a stage (or "all")
    to its seed; ``extra`` adds rows (e.g. stage timings) as (name, value) pairs."""

    model: str
    weights_hash: str
    target: str
    config_file: str
    seeds: Mapping[str, int]
    version: str
    commit: str | None
    date: str
    machine: str
    device: str
    title: str = DEFAULT_TITLE
    extra: tuple[tuple[str, str], ...] = ()

    @classmethod
    def collect(cls, *, model: str, weights_hash: str, target: str, config_file: str, seeds: Mapping[str, int],
                device: str, title: str = DEFAULT_TITLE, extra: Sequence[tuple[str, str]] = ()) -> "PageHeader":
        """A header for a page rendered now, on this machine, from this checkout."""
        from interp_af.report.provenance import git_commit, machine, package_version, utc_now

        return cls(model, weights_hash, target, config_file, dict(seeds), package_version(), git_commit(),
                   utc_now(), machine(), device, title, tuple((str(k), str(v)) for k, v in extra))

    def rows(self) -> list[tuple[str, str]]:
        seeds = ", ".join(f"{k} {v}" for k, v in self.seeds.items()) or "none"
        return [("model", self.model), ("weights (sha256)", self.weights_hash), ("target", self.target),
                ("config", self.config_file), ("seeds", seeds), ("interp_af", self.version),
                ("commit", self.commit or "not a git checkout"), ("date", self.date), ("machine", self.machine),
                ("device", self.device), *self.extra]


@dataclass(frozen=True)
class Finding:
    """One row of the findings table: ``question`` (what a reader asks), ``measure`` (what answers it), the
    ``value`` (a number formatted with ``fmt``, or a text such as a site name) with its ``interval``, and
    ``figure``: the key of the FigureBlock that shows it."""

    question: str
    measure: str
    value: float | str | None
    interval: tuple[float, float] | None = None
    fmt: str = ".3f"
    figure: str | None = None
    note: str = ""

    def value_text(self) -> str:
        def num(x: float) -> str:
            return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, self.fmt)

        if self.value is None:
            return "not measured"
        text = self.value if isinstance(self.value, str) else num(self.value)
        if self.interval is not None:
            text += f" [{num(self.interval[0])}, {num(self.interval[1])}]"
        return text


@dataclass(frozen=True)
class FigureBlock:
    """A figure and its caption. ``figure``: a plotly figure, or None when this run did not produce it
    (``missing`` then says why). ``source``: the result it was drawn from (e.g. ``probes/probes.scores.json``)."""

    key: str
    title: str
    figure: Any | None
    what: str
    evidence: str
    source: str = ""
    missing: str = MISSING

    @classmethod
    def build(cls, key: str, title: str, make: Callable[[], Any], *, what: str, evidence: str, source: str = "",
              ) -> "FigureBlock":
        """Call ``make()`` for the figure; an error becomes the block's ``missing`` text (one broken figure
        must not lose the whole page)."""
        try:
            fig, missing = make(), MISSING
        except Exception as err:  # noqa: BLE001 - any failure of one figure is reported in its place
            fig, missing = None, f"figure unavailable: {type(err).__name__}: {str(err)[:300]}"
        return cls(key, title, fig, what, evidence, source, missing)


@dataclass(frozen=True)
class Section:
    """A titled group of figures (one per stage, typically), with free-text notes (warnings, caveats)."""

    key: str
    title: str
    figures: tuple[FigureBlock, ...] = ()
    notes: tuple[str, ...] = ()
    intro: str = ""


@dataclass(frozen=True)
class Contribution:
    """What one stage adds to the page: its sections (figures with captions) and its rows of the findings table."""

    sections: tuple[Section, ...] = ()
    findings: tuple[Finding, ...] = ()


def _field(row: Any, name: str) -> str:
    value = row.get(name, "") if isinstance(row, Mapping) else getattr(row, name, "")
    return "" if value is None else str(value)


def _check_keys(sections: Sequence[Section], findings: Sequence[Finding]) -> None:
    seen: set[str] = set()
    for key in [s.key for s in sections] + [f"fig:{b.key}" for s in sections for b in s.figures]:
        bare = key.removeprefix("fig:")
        if not _KEY.fullmatch(bare):
            raise InterpAFError(f"section/figure key {bare!r}: use letters, digits and _ . : - (it becomes an anchor)")
        if key in seen:
            raise InterpAFError(f"key {bare!r} is used twice on the page; give each section and figure its own key")
        seen.add(key)
    figures = {b.key for s in sections for b in s.figures}
    for f in findings:
        if f.figure is not None and f.figure not in figures:
            raise InterpAFError(f"finding {f.question!r} links to figure {f.figure!r}, which no section has; "
                                f"figures: {', '.join(sorted(figures)) or 'none'}")


def _environment():
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                              lstrip_blocks=True)


def _script(js: str) -> tuple[str | None, str | None]:
    """(inline script text, src URL): exactly one is set."""
    if js == INLINE:
        from interp_af.report.figures import plotlyjs

        # a literal "</script" inside the bundle would end the tag early; plotly.js has none, keep it so
        return plotlyjs().replace("</script", "<\\/script"), None
    if not js or js.strip() != js:
        raise InterpAFError(f"js={js!r}: pass 'inline' or the relative URL of the shared plotly.min.js")
    return None, js


def render_page(header: PageHeader, verdicts: Iterable[Any], findings: Sequence[Finding],
                sections: Sequence[Section], *, js: str) -> str:
    """The report page as one HTML string. ``js``: ``"inline"`` (plotly.js inside the page: one file that
    opens anywhere, ~5 MB) or the URL of the shared plotly.js relative to where the page will be written
    (e.g. ``"plotly.min.js"``; see :func:`interp_af.report.figures.script_src`)."""
    from markupsafe import Markup

    from interp_af.report.figures import figure_div

    sections, findings = list(sections), list(findings)
    _check_keys(sections, findings)
    inline, src = _script(js)
    rows = []
    for v in verdicts:
        verdict = _field(v, "verdict")
        rows.append({"explanation": _field(v, "explanation"), "test": _field(v, "test"),
                     "measured": _field(v, "measured"), "margin": _field(v, "margin"), "verdict": verdict,
                     "css": VERDICTS.get(verdict.strip().lower(), "other")})
    blocks = []
    for s in sections:
        figs = []
        for b in s.figures:
            # plotly's to_html escapes < > / inside its JSON: the div is safe markup, the rest is escaped
            div = Markup(figure_div(b.figure, div_id=f"plot-{b.key}")) if b.figure is not None else None
            figs.append({"block": b, "div": div})
        blocks.append({"section": s, "figures": figs})
    n_figures = sum(1 for b in blocks for f in b["figures"] if f["div"] is not None)
    return _environment().get_template("report.html.j2").render(
        header=header, header_rows=header.rows(), verdicts=rows, findings=findings, sections=blocks,
        plotly_inline=Markup(f"<script>{inline}</script>") if inline is not None else None, plotly_src=src,
        n_figures=n_figures, legend=_legend())


def _legend() -> list[tuple[str, str]]:
    return [(w, c) for w, c in VERDICTS.items() if w not in ("supports", "rules out")]



def write_page(path: str | Path, header: PageHeader, verdicts: Iterable[Any], findings: Sequence[Finding],
               sections: Sequence[Section], *, inline: bool = False, js: str | Path | None = None) -> Path:
    """Render the page and write it to ``path`` atomically; returns ``path``.

    ``inline=True``: plotly.js inside the page, one file to share (about 5 MB). Otherwise the page loads the
    shared plotly.js at ``js`` (default: ``plotly.min.js`` beside the page, written once, see
    :func:`~interp_af.report.figures.ensure_plotlyjs`) by a relative URL, so the run folder stays movable."""
    from interp_af.report.figures import atomic_write, ensure_plotlyjs, script_src

    path = Path(path)
    if inline:
        src = INLINE
    else:
        shared = Path(js) if js is not None else path.parent / "plotly.min.js"
        src = script_src(ensure_plotlyjs(shared), path)
    return atomic_write(path, render_page(header, verdicts, findings, sections, js=src))
