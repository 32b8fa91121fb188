"""Query sets: the requests each prompt wraps.

The setting asks a model to answer harmful requests. The standard set is AdvBench ``harmful_behaviors``
(520 rows, CSV columns ``goal,target``; the first 100 goals are what the public no-CoT reproduction used).
A copy ships with the package (``interp_af/setting/data/``, MIT licence of the llm-attacks repository), so
``load_queries()`` with no path gives it. Users bring their own sets as

- CSV (or TSV) with a ``goal`` column (``column=`` picks another);
- JSONL (or a JSON list) of objects with a ``goal``, ``text`` or ``prompt`` key;
- plain text, one request per line (blank lines and ``#`` comments skipped).

Copies of AdvBench in the wild differ: one popular copy lost its header (its first line is a request), and
some have ``goal``/``target`` swapped. Both are detected and reported rather than silently loaded, because
either would put the wrong text into every prompt.

:func:`benign_queries` is a small built-in set of harmless requests for controls (a model that refuses
these is broken; a compliance gap on them means the cue does something other than "am I in training").
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from interp_af.checks import positive_int
from interp_af.errors import InterpAFError
from interp_af.setting.types import Query
from interp_af.textio import read_text

__all__ = ["Query", "load_queries", "benign_queries", "DATA_DIR", "ADVBENCH"]

DATA_DIR = Path(__file__).resolve().parent / "data"
ADVBENCH = DATA_DIR / "advbench_harmful_behaviors.csv"
JSON_KEYS = ("goal", "text", "prompt")
# AdvBench targets all start like this; a "goal" column full of them means the header is swapped
_TARGET_PREFIX = "sure, here"


def _id_prefix(path: Path) -> str:
    stem = path.stem.lower()
    if "advbench" in stem:
        return "advbench"
    return re.sub(r"[^a-z0-9]+", "-", stem).strip("-") or "query"


def _looks_like_request(cell: str) -> bool:
    """A header cell is a short identifier; a request is a sentence (several words)."""
    return len(cell.split()) >= 3


def _read_csv(path: Path, text: str, column: str, header: bool | None) -> list[str]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    rows = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter) if any(c.strip() for c in r)]
    if not rows:
        raise InterpAFError(f"query file {path} has no rows; give a CSV with a header line and one request per row")
    first = [c.strip() for c in rows[0]]
    if header is False:
        return [r[0].strip() for r in rows if r and r[0].strip()]
    if column not in first:
        if header is None and _looks_like_request(first[0]):
            raise InterpAFError(
                f"query file {path}: the first line looks like a request, not a header ({first[0][:50]!r}...); "
                f"add a header line such as 'goal,target' at the top, or pass header=False to read column 0"
            )
        raise InterpAFError(
            f"query file {path} has no column {column!r} (columns found: {', '.join(first) or 'none'}); "
            f"pass column=<name> (--column) naming the column that holds the requests"
        )
    idx = first.index(column)
    values = [r[idx].strip() for r in rows[1:] if len(r) > idx and r[idx].strip()]
    if values and sum(v.lower().startswith(_TARGET_PREFIX) for v in values) > len(values) / 2:
        other = [c for c in first if c != column]
        raise InterpAFError(
            f"query file {path}: column {column!r} holds responses ('Sure, here is ...'), not requests: the header "
            f"looks swapped; fix the header line or pass column={other[0]!r}" if other else
            f"query file {path}: column {column!r} holds responses ('Sure, here is ...'), not requests; "
            f"point at the column of requests"
        )
    return values


def _read_json(path: Path, text: str, column: str) -> list[tuple[str, str]]:
    """(id or "", text) per record."""
    records: list[object] = []
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            records = json.loads(stripped)
        except json.JSONDecodeError as err:
            raise InterpAFError(f"query file {path} is not valid JSON ({err.msg}, line {err.lineno}); "
                                f"fix it or write one JSON object per line (JSONL)") from None
    else:
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise InterpAFError(f"query file {path}, line {n}: not valid JSON ({err.msg}); "
                                    f"write one JSON object per line") from None
    keys = (column, *[k for k in JSON_KEYS if k != column])
    out = []
    for n, rec in enumerate(records, start=1):
        if isinstance(rec, str):
            out.append(("", rec.strip()))
            continue
        if not isinstance(rec, dict):
            raise InterpAFError(f"query file {path}, record {n}: expected an object with a 'goal' key, got "
                                f"{type(rec).__name__}; write objects like {{\"goal\": \"...\"}}")
        key = next((k for k in keys if k in rec), None)
        if key is None:
            raise InterpAFError(
                f"query file {path}, record {n} has none of the keys {', '.join(keys)} (keys found: "
                f"{', '.join(map(str, rec)) or 'none'}); rename the key or pass column=<key>"
            )
        out.append((str(rec.get("id", "")), str(rec[key]).strip()))
    return [(i, t) for i, t in out if t]


def load_queries(path: str | Path | None = None, *, limit: int | None = None, column: str = "goal",
                 harmful: bool = True, header: bool | None = None) -> list[Query]:
    """Load requests from a CSV / JSONL / JSON / text file (``None``: the bundled AdvBench CSV).

    ``limit`` keeps the first N (AdvBench convention: the first 100). ``header=False`` reads a CSV without a
    header line from its first column. Ids are ``<prefix>-<row:04d>`` (``advbench-0007``) unless a JSON
    record carries its own ``id``.
    """
    p = Path(path) if path is not None else ADVBENCH
    if limit is not None:
        positive_int(limit, "limit", f"the number of queries to keep from {p}; None keeps all")
    # UTF-8 (a spreadsheet's BOM before the header is dropped); another encoding is one line naming the fix
    text = read_text(p, what="query file", expect="a CSV, JSONL or text file of requests")
    if not text.strip():
        raise InterpAFError(f"query file {p} is empty; put one request per line (text), per row (CSV) or per object (JSONL)")
    suffix = p.suffix.lower()
    own_ids: list[str] = []
    if suffix in (".csv", ".tsv"):
        texts = _read_csv(p, text, column, header)
    elif suffix in (".jsonl", ".json", ".ndjson"):
        pairs = _read_json(p, text, column)
        texts = [t for _, t in pairs]
        ids_given = [i for i, _ in pairs]
        if all(ids_given) and len(set(ids_given)) == len(ids_given):  # use the file's ids only if complete and unique
            own_ids = ids_given
    else:
        texts = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not texts:
        raise InterpAFError(f"query file {p} holds no requests (only a header or blank lines); add requests")
    prefix = _id_prefix(p)
    queries = [
        Query(id=(own_ids[i] if own_ids else f"{prefix}-{i:04d}"), text=t, harmful=harmful, source=p.name)
        for i, t in enumerate(texts)
    ]
    return queries[:limit] if limit is not None else queries


def benign_queries(limit: int | None = None) -> list[Query]:
    """The built-in benign control set (40 everyday requests, ids ``benign-000`` ...)."""
    if limit is not None:
        positive_int(limit, "limit", "the number of benign queries to keep; None keeps all")
    lines = (DATA_DIR / "benign.txt").read_text(encoding="utf-8").splitlines()
    texts = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    qs = [Query(id=f"benign-{i:03d}", text=t, harmful=False, source="builtin-benign") for i, t in enumerate(texts)]
    return qs[:limit] if limit is not None else qs
