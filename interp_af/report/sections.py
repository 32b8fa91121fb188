"""What a stage contributes to the report: typed sections of figures and findings.

Each stage builds its :class:`Section` from its own result object (never from files read back by name), so
every figure is drawn from the same object as the numbers beside it. A :class:`FigureBlock` carries the
plotly figure and a two-part caption (what it shows; what would count as evidence). A :class:`Finding` is
one row of the findings table: a question, the measure, its value with an interval, and the anchor of the
figure that illustrates it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FigureBlock:
    key: str          # anchor and file stem, unique within the stage ("gap", "auroc", "patch_resid_pre", ...)
    title: str
    figure: Any       # a plotly Figure
    what: str         # what the figure shows
    evidence: str     # what would count as evidence for within-forward-pass alignment faking


@dataclass(frozen=True)
class Finding:
    question: str
    measure: str
    value: float | str | None
    ci: tuple[float, float] | None = None
    figure: str = ""                  # key of the FigureBlock that illustrates it
    unit: str = ""                    # "pp" (fraction shown as points), "logit", "" (plain number)


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    figures: tuple[FigureBlock, ...] = ()
    findings: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = field(default=())
