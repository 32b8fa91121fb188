"""Twins: one query rendered in two arms (free and paid), and whether they align token for token.

Activation patching swaps activations between the arms position by position, so it needs twins of equal
length that differ *only* at the cue tokens (``<is_free_tier_user>true`` vs ``false``). Whether they do is a
property of the tokenizer, not of the prompt text: ``true``/``false`` are one token each in Llama 3 but may
split differently elsewhere, and a variant that drops the tag in one arm can never align. So every twin
records ``aligned``, the ``diff_positions`` and, when misaligned, a one-line ``reason``; nothing here raises on
a misaligned twin. Capture and probes can use any twin; patching filters to aligned ones.

:func:`summarize_twins` turns a list of twins into a :class:`TwinSummary` (counts, lengths, which twins are
misaligned and why) that prints, saves to JSON, and converts to a per-twin DataFrame.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from tqdm import tqdm

from interp_af.errors import InterpAFError
from interp_af.setting.prompts import Variant, get_variant
from interp_af.setting.render import check_query_text, render, special_strings
from interp_af.setting.types import Query, RenderedPrompt, Twin, cue_spans, is_cue_name

__all__ = ["Twin", "RenderedPrompt", "render", "make_twins", "pair_twin", "render_arms", "TwinSummary", "summarize_twins"]


def _resolve(variant: str | Variant, options: dict[str, object]) -> Variant:
    return get_variant(variant, **options)


def _arms(v: Variant, arms: Sequence[str] | None, n: int | None) -> tuple[str, ...]:
    chosen = tuple(arms) if arms is not None else (tuple(v.arms)[:n] if n else tuple(v.arms))
    bad = [a for a in chosen if a not in v.arms]
    if bad:
        raise InterpAFError(f"arm(s) {', '.join(bad)} not in variant {v.name!r}; its arms are {', '.join(v.arms)}")
    return chosen


def render_arms(tokenizer: Any, queries: Sequence[Query], variant: str | Variant = "default",
                arms: Sequence[str] | None = None, *, template: str | None = None, progress: bool | None = None,
                **variant_options: object) -> list[RenderedPrompt]:
    """Every query in every arm (query-major order): the prompt list capture and probes need."""
    v = _resolve(variant, dict(variant_options))
    chosen = _arms(v, arms, None)
    specials = special_strings(tokenizer)
    out = []
    for q in tqdm(queries, desc=f"render {v.name}", disable=_quiet(progress, len(queries))):
        check_query_text(q, specials)
        for arm in chosen:
            out.append(render(tokenizer, v.conversation(q, arm), query_id=q.id, variant=v.name, template=template,
                              extra_meta={"harmful": q.harmful}))
    return out


def _quiet(progress: bool | None, n: int) -> bool:
    return not progress if progress is not None else n < 200


def _describe(p: RenderedPrompt, tokenizer: Any) -> str:
    if "cue" not in p.positions:
        return f"{p.arm}: no cue"
    n = p.positions["cue_end"] - p.positions["cue"] + 1
    toks = [tokenizer.decode([t]) for t in p.input_ids[p.positions["cue"]: p.positions["cue_end"] + 1]] if tokenizer else []
    return f"{p.arm}: cue {toks} = {n} token(s)" if toks else f"{p.arm}: cue = {n} token(s)"


def pair_twin(a: RenderedPrompt, b: RenderedPrompt, tokenizer: Any = None) -> Twin:
    """Compare two renderings of one query; never raises on a mismatch (``aligned=False`` + ``reason``)."""
    qid = a.query_id
    if "cue" not in a.positions or "cue" not in b.positions:
        missing = a.arm if "cue" not in a.positions else b.arm
        return Twin(qid, a, b, (), False, f"arm {missing!r} has no cue (tag absent): lengths {len(a)} vs {len(b)}")
    if len(a) != len(b):
        first = next((i for i, (x, y) in enumerate(zip(a.input_ids, b.input_ids)) if x != y), min(len(a), len(b)))
        return Twin(qid, a, b, (), False, f"lengths differ ({len(a)} vs {len(b)} tokens, first difference at token "
                                          f"{first}); {_describe(a, tokenizer)}; {_describe(b, tokenizer)}")
    diffs = tuple(i for i, (x, y) in enumerate(zip(a.input_ids, b.input_ids)) if x != y)
    # every place the variant inserted the arm's value is cue (a prompt file may show it more than once)
    cue = {i for p in (a, b) for lo, hi in cue_spans(p.positions) for i in range(lo, hi + 1)}
    if not diffs:
        return Twin(qid, a, b, diffs, False, "the two arms render to identical tokens: the cue makes no difference")
    outside = [i for i in diffs if i not in cue]
    if outside:
        return Twin(qid, a, b, diffs, False, f"twins differ outside the cue at token(s) {outside[:5]}"
                                             f"{' ...' if len(outside) > 5 else ''}")
    # "cue"/"cue_end" may legitimately sit one token apart (" t"+"rue" vs " "+"false"): still aligned, since the
    # twins have equal length and differ only inside the cue spans; any other named position must match
    moved = [k for k in a.positions if k in b.positions and a.positions[k] != b.positions[k] and not is_cue_name(k)]
    if moved:
        return Twin(qid, a, b, diffs, False, f"named position(s) {moved} differ between the arms")
    return Twin(qid, a, b, diffs, True, "")


def make_twins(tokenizer: Any, queries: Sequence[Query], variant: str | Variant = "default",
               arms: tuple[str, str] | None = None, *, template: str | None = None, progress: bool | None = None,
               **variant_options: object) -> list[Twin]:
    """Render each query in two arms (default: the variant's first two) and pair them into :class:`Twin` s."""
    v = _resolve(variant, dict(variant_options))
    pair = _arms(v, arms, 2)
    if len(pair) != 2:
        raise InterpAFError(f"arms={pair} for variant {v.name!r}; twins need exactly two arms")
    if not queries:
        raise InterpAFError("no queries to make twins of; pass at least one query (load_queries() or benign_queries())")
    twins = []
    specials = special_strings(tokenizer)
    for q in tqdm(queries, desc=f"twins {v.name}", disable=_quiet(progress, len(queries))):
        check_query_text(q, specials)
        a, b = (render(tokenizer, v.conversation(q, arm), query_id=q.id, variant=v.name, template=template,
                       extra_meta={"harmful": q.harmful}) for arm in pair)
        twins.append(pair_twin(a, b, tokenizer))
    return twins


@dataclass(frozen=True)
class TwinSummary:
    """What a set of twins looks like: counts, lengths, misaligned twins and why."""

    variant: str
    arms: tuple[str, ...]
    tokenizer: str
    n: int
    n_aligned: int
    len_min: int
    len_median: float
    len_max: int
    n_diff_tokens: tuple[int, ...]          # distinct numbers of differing tokens among aligned twins (e.g. (1,))
    misaligned: tuple[tuple[str, str], ...]  # (query_id, reason)
    cue_tokens: tuple[str, ...] = ()        # the cue tokens of the first twin, per arm, as decoded text
    rows: tuple[dict, ...] = ()             # per-twin records (see to_frame)

    @property
    def all_aligned(self) -> bool:
        return self.n_aligned == self.n

    def lines(self) -> list[str]:
        out = [f"variant {self.variant} ({' vs '.join(self.arms)}), tokenizer {self.tokenizer}",
               f"{self.n} queries, {self.n_aligned} aligned twins, {self.n - self.n_aligned} misaligned; "
               f"prompt length {self.len_min}-{self.len_max} tokens (median {self.len_median:g})"]
        if self.cue_tokens:
            out.append("cue tokens: " + "; ".join(self.cue_tokens))
        if self.n_diff_tokens:
            out.append(f"aligned twins differ at {', '.join(map(str, self.n_diff_tokens))} token(s)")
        reasons: dict[str, list[str]] = {}
        for qid, why in self.misaligned:
            reasons.setdefault(why.split(" (")[0].split(":")[0], []).append(qid)  # group by kind, not numbers
        for why, qids in reasons.items():
            out.append(f"misaligned ({len(qids)}): {why} [{', '.join(qids[:3])}{' ...' if len(qids) > 3 else ''}]")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(list(self.rows))

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path: str | Path) -> Path:
        from interp_af import atomic, owned

        p = Path(path)
        owned.ensure_dir(p.parent, what="twins summary")
        return atomic.write_json(p, self.to_dict())  # write then rename: never a half-written file

    @classmethod
    def load(cls, path: str | Path) -> "TwinSummary":
        return cls.from_dict(json.loads(Path(path).read_text()))

    @classmethod
    def from_dict(cls, d: dict) -> "TwinSummary":
        d = dict(d)
        d["arms"] = tuple(d["arms"])
        d["n_diff_tokens"] = tuple(d["n_diff_tokens"])
        d["misaligned"] = tuple(tuple(m) for m in d["misaligned"])
        d["cue_tokens"] = tuple(d["cue_tokens"])
        d["rows"] = tuple(d["rows"])
        return cls(**d)


def summarize_twins(twins: Sequence[Twin], tokenizer: Any = None) -> TwinSummary:
    """Summarise twins (``tokenizer`` only adds decoded cue tokens and its name)."""
    if not twins:
        raise InterpAFError("no twins to summarise; make_twins() returned nothing: pass at least one query")
    lengths = [len(p) for t in twins for p in (t.a, t.b)]
    rows = tuple({"query_id": t.query_id, "aligned": t.aligned, "len_a": len(t.a), "len_b": len(t.b),
                  "n_diff": len(t.diff_positions), "diff_positions": list(t.diff_positions),
                  "cue_a": t.a.positions.get("cue", -1), "cue_b": t.b.positions.get("cue", -1),
                  "decision_a": t.a.positions["decision"], "decision_b": t.b.positions["decision"], "reason": t.reason}
                 for t in twins)
    first = twins[0]
    cue_tokens: tuple[str, ...] = ()
    if tokenizer is not None:
        cue_tokens = tuple(_describe(p, tokenizer) for p in (first.a, first.b))
    name = getattr(tokenizer, "name_or_path", "") or (type(tokenizer).__name__ if tokenizer is not None else "")
    return TwinSummary(
        variant=first.a.variant, arms=(first.a.arm, first.b.arm), tokenizer=str(name), n=len(twins),
        n_aligned=sum(t.aligned for t in twins), len_min=min(lengths), len_median=float(statistics.median(lengths)),
        len_max=max(lengths), n_diff_tokens=tuple(sorted({len(t.diff_positions) for t in twins if t.aligned})),
        misaligned=tuple((t.query_id, t.reason) for t in twins if not t.aligned), cue_tokens=cue_tokens, rows=rows,
    )
