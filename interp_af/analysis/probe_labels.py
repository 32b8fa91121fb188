"""Labels and controls for probes: what a probe is asked to separate, and what it must *not* be able to.

A label is a column of the capture's metadata, written ``column`` (a boolean column, or a two-valued one whose
positive class is the first value seen in row order) or ``column=value`` (rows equal to ``value`` are class 1).
Names users reach for first: ``arm`` (free vs paid), ``in_training`` (the arm is trained on *and* the
training information is present), ``complied`` (the model's own decision; ``decision`` is an alias).

Controls (Hewitt & Liang's selectivity, and the leakage checks this setting needs):

- **random labels**: the real labels shuffled *within each query*, then whole queries' label vectors shuffled
  among queries of the same size. Nothing about a row predicts its new label, yet the class balance and the
  query structure stay as they were, so a probe that scores above chance has found a leak (a query seen on both
  sides of a split, preprocessing fitted on test rows), not a concept.
- **same label**: rows that all share *one* value of the label, split in two pseudo-classes at random *by query*.
  This is the control that caught published pipelines: both classes are, say, refusals, and a split by pair
  instead of by query still scored 0.63.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from interp_af.errors import InterpAFError

ALIASES = {"decision": "complied", "tier": "arm"}


def resolve_label(meta: pd.DataFrame, spec: str) -> tuple[np.ndarray, str]:
    """``(y [rows] bool, description)`` for a label spec (``column`` or ``column=value``) over ``meta``."""
    col, _, value = spec.partition("=")
    col = ALIASES.get(col.strip(), col.strip())
    if col not in meta.columns:
        raise InterpAFError(f"label column {col!r} is not in the capture's metadata; choose one of: {', '.join(map(str, meta.columns))}")
    series = meta[col]
    if value:
        y = series.astype(str).str.lower().to_numpy() == value.strip().lower()
        desc = f"{col}={value.strip()}"
        if not y.any():
            raise InterpAFError(f"label {spec!r}: no row has {col} == {value.strip()!r}; values are {sorted(series.astype(str).unique())}")
    else:
        vals = series.dropna().unique()
        if series.dtype == bool or set(map(str, vals)) <= {"True", "False", "true", "false", "1", "0"}:
            y = series.astype(str).str.lower().isin(["true", "1"]).to_numpy()
            desc = col
        elif len(vals) == 2:
            y = (series == vals[0]).to_numpy()
            desc = f"{col}={vals[0]}"
        else:
            raise InterpAFError(f"label column {col!r} has {len(vals)} values; name the positive class as '{col}=VALUE'")
    if y.all() or not y.any():
        raise InterpAFError(f"label {desc!r} has one class only in the selected rows: select rows with both classes (--where) or another label")
    return y.astype(bool), desc


def permute_within_groups(y_N: np.ndarray, groups_N: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random-label control: shuffle labels inside each group, then swap whole groups' label vectors among
    groups of the same size (so both within- and between-query associations are destroyed)."""
    y = np.asarray(y_N).copy()
    uniq, gidx = np.unique(groups_N, return_inverse=True)
    members = [np.flatnonzero(gidx == g) for g in range(len(uniq))]
    by_size: dict[int, list[int]] = {}
    for g, m in enumerate(members):
        by_size.setdefault(len(m), []).append(g)
    out = y.copy()
    for gs in by_size.values():
        donors = rng.permutation(gs)
        for g, d in zip(gs, donors):
            out[members[g]] = rng.permutation(y[members[d]])
    return out


def same_label_control(y_N: np.ndarray, groups_N: np.ndarray, rng: np.random.Generator, min_groups: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``(rows, pseudo_labels)`` inside the class with more queries, half of its queries labelled 1; ``None`` if
    no class has ``min_groups`` queries (the control does not apply)."""
    best = None
    for c in (True, False):
        rows = np.flatnonzero(y_N == c)
        groups = np.unique(groups_N[rows])
        if len(groups) >= min_groups and (best is None or len(groups) > best[1]):
            best = (rows, len(groups), groups)
    if best is None:
        return None
    rows, n, groups = best
    pos = set(rng.permutation(groups)[: n // 2].tolist())
    return rows, np.array([g in pos for g in groups_N[rows]], dtype=bool)
