"""``report.html``: one self-contained page a researcher reads top to bottom.

The page is assembled from the :class:`~interp_af.report.sections.Section` s the stages contribute (each
drawn from the stage's own result object, so every figure shows the same numbers as its findings) and the
verdict table. plotly.js is inlined once, so the page opens offline. Each figure carries a two-line caption:
what it shows, and what would count as evidence for within-forward-pass alignment faking.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Mapping, Sequence

from interp_af.report.sections import Finding, Section


def _fig_html(fig: Any) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, default_height="460px")


def _figure(block: Any) -> str:
    try:
        body = _fig_html(block.figure)
    except Exception as err:  # noqa: BLE001 - one broken figure must not lose the whole report
        body = f"<p class='missing'>figure unavailable: {html.escape(type(err).__name__)}: {html.escape(str(err))[:300]}</p>"
    return (f"<section id='{html.escape(block.key)}'><h2>{html.escape(block.title)}</h2>{body}<p class='cap'>"
            f"{html.escape(block.what)}<br><em>{html.escape(block.evidence)}</em></p></section>")


def _value(f: Finding) -> str:
    if f.value is None:
        return "-"
    if isinstance(f.value, str):
        return html.escape(f.value)
    fmt = (lambda x: f"{x:+.1%}") if f.unit == "pp" else (lambda x: f"{x:+.3f}") if f.unit == "logit" else \
        (lambda x: f"{x:.3f}")
    ci = f" [{fmt(f.ci[0])}, {fmt(f.ci[1])}]" if f.ci is not None else ""
    return html.escape(fmt(float(f.value)) + ci)


def write_report(run: Path, sections: Sequence[Section], verdicts: Sequence[Mapping[str, str]],
                 timings: Mapping[str, float]) -> Path:
    """Write ``run/report.html`` and return its path."""
    from plotly.offline import get_plotlyjs

    table = "".join(
        f"<tr class='{html.escape(r['verdict'].replace(' ', '-'))}'><td>{html.escape(r['explanation'])}</td>"
        f"<td>{html.escape(r['contrast'])}</td><td>{html.escape(r['result'])}</td>"
        f"<td><b>{html.escape(r['verdict'])}</b></td></tr>" for r in verdicts)
    findings = "".join(
        f"<tr><td>{html.escape(f.question)}</td><td>{html.escape(f.measure)}</td><td>{_value(f)}</td>"
        f"<td>{'<a href=#' + html.escape(f.figure) + '>figure</a>' if f.figure else ''}</td></tr>"
        for s in sections for f in s.findings)
    body = "".join(_figure(b) for s in sections for b in s.figures)
    notes = "".join(f"<li>{html.escape(n)}</li>" for s in sections for n in s.notes)
    stamps = ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>interp_af report</title>
<script>{get_plotlyjs()}</script>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;width:100%}}td,th{{border:1px solid #ccc;padding:.4em;vertical-align:top}}
tr.supports td:last-child{{background:#e3f5e1}}tr.rules-out td:last-child{{background:#fbe3e3}}
tr.inconclusive td:last-child,tr.not-tested td:last-child{{background:#f4f4f4}}
.cap{{color:#444;font-size:.92em}}.missing{{color:#a00}}</style>
</head><body>
<h1>interp_af: is the compliance gap computed inside the forward pass?</h1>
<h2>Verdicts</h2>
<table><tr><th>candidate explanation</th><th>contrast that tests it</th><th>measured</th><th>verdict</th></tr>{table}</table>
<h2>Findings</h2>
<table><tr><th>question</th><th>measure</th><th>value [95% CI]</th><th></th></tr>{findings}</table>
{'<h2>Notes</h2><ul>' + notes + '</ul>' if notes else ''}
{body}
<p class='cap'>Stage timings: {html.escape(stamps)}. Config: config.json in this folder.</p>
</body></html>"""
    path = run / "report.html"
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(page)
    tmp.replace(path)
    return path
