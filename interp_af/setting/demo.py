"""The setting's own end-to-end job: pick a tokenizer and a query set, render the twins, summarise them.

This is what ``interp-af prompts`` shows and what ``interp-af run`` calls until the later stages exist:
:func:`build_twins` returns everything needed to display twins; :func:`summarize_setting` returns a
:class:`SettingSummary` (a frozen result that prints, saves to JSON and converts to a DataFrame).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interp_af.setting.prompts import Variant, get_variant
from interp_af.setting.queries import benign_queries, load_queries
from interp_af.setting.tokenizer import default_tokenizer, load_tokenizer
from interp_af.setting.twins import TwinSummary, make_twins, summarize_twins
from interp_af.setting.types import Query, Twin

__all__ = ["SetupResult", "build_twins", "SettingSummary", "summarize_setting"]


@dataclass(frozen=True)
class SetupResult:
    """The pieces behind a summary: tokenizer, variant, queries, twins, and where each came from."""

    tokenizer: Any
    variant: Variant
    queries: tuple[Query, ...]
    twins: tuple[Twin, ...]
    tokenizer_source: str
    queries_source: str


def build_twins(model: str | Path | None = None, variant: str | Variant = "default", queries: str | Path | None = None,
                *, limit: int | None = None, column: str = "goal", benign: bool = False,
                arms: tuple[str, str] | None = None, template: str | None = None, progress: bool | None = None,
                **variant_options: object) -> SetupResult:
    """Tokenizer (``model`` or the default), queries (a file, the built-in AdvBench, or ``benign=True``), twins."""
    if model is not None:
        tok, tok_src = load_tokenizer(model), f"tokenizer: {model}"
    else:
        tok, tok_src = default_tokenizer()
    if benign:
        qs, q_src = benign_queries(limit), "built-in benign set"
    else:
        qs = load_queries(queries, limit=limit, column=column)
        q_src = str(queries) if queries is not None else "built-in AdvBench harmful_behaviors"
    v = get_variant(variant, **variant_options)
    twins = make_twins(tok, qs, v, arms, template=template, progress=progress)
    return SetupResult(tok, v, tuple(qs), tuple(twins), tok_src, q_src)


@dataclass(frozen=True)
class SettingSummary:
    """The setting demo's result: where tokenizer and queries came from, and the twin summary."""

    tokenizer_source: str
    queries_source: str
    twins: TwinSummary

    def lines(self) -> list[str]:
        return [self.tokenizer_source, f"queries: {self.queries_source}", *self.twins.lines()]

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def to_frame(self):
        return self.twins.to_frame()

    def save(self, path: str | Path) -> Path:
        from interp_af import atomic, owned

        p = Path(path)
        owned.ensure_dir(p.parent, what="setting summary")
        d = {"tokenizer_source": self.tokenizer_source, "queries_source": self.queries_source,
             "twins": self.twins.to_dict()}
        return atomic.write_json(p, d)

    @classmethod
    def load(cls, path: str | Path) -> "SettingSummary":
        d = json.loads(Path(path).read_text())
        return cls(d["tokenizer_source"], d["queries_source"], TwinSummary.from_dict(d["twins"]))


def summarize_setting(model: str | Path | None = None, variant: str | Variant = "default",
                      queries: str | Path | None = None, *, limit: int | None = None, column: str = "goal",
                      benign: bool = False, arms: tuple[str, str] | None = None, template: str | None = None,
                      out: str | Path | None = None, **variant_options: object) -> SettingSummary:
    """Render and summarise the twins (the main job of the setting); ``out`` also writes the JSON summary."""
    setup = build_twins(model, variant, queries, limit=limit, column=column, benign=benign, arms=arms,
                        template=template, **variant_options)
    summary = SettingSummary(setup.tokenizer_source, setup.queries_source,
                             summarize_twins(list(setup.twins), setup.tokenizer))
    if out is not None:
        summary.save(out)
    return summary
