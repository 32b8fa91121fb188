"""Position specs: the one grammar every command uses to say *which tokens* of a prompt.

A rendered prompt has named positions (``cue``, ``cue_end``, ``end_system``, ``end_user``, ``decision``; see
:mod:`interp_af.setting.render`). The metric is read one step later, after the answers' shared prefix (the
``<`` both tags start with) is teacher-forced: that position is ``metric``. A spec is one of

- ``name``: a named position, or ``metric``;
- ``name+k`` / ``name-k``: ``k`` tokens after / before it, e.g. ``decision-1``;
- ``name-k..name+j``: a window of one name, expanded into one spec per token (``decision-3..decision``);
- ``all``: every position (the prompt and the shared prefix);
- ``from_cue``: from the cue to ``metric``, inclusive;
- an integer: an absolute index (negative counts from the end).

Captures store one array per single-token spec (windows expanded), so every stored array stays
``[rows, layers, d]``; steering and SAE ablation edit every token a spec names. A spec that a prompt does not
have (no ``cue`` in an arm without one, an offset outside the prompt) resolves to -1 where a single index is
asked for: capture stores that row as NaN and flags it, never silently as zeros.
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence

from interp_af.errors import InterpAFError

METRIC = "metric"
SPANS = ("all", "from_cue")
_SPEC = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<off>[+-]\d+)?$")
_INT = re.compile(r"^-?\d+$")


def parse(spec: str) -> tuple[str, int]:
    """``"decision-2"`` -> ``("decision", -2)``; a one-line error for anything that is not ``name[+-k]``."""
    m = _SPEC.match(str(spec).strip())
    if not m:
        raise InterpAFError(f"position {spec!r} is not a valid spec; use a name (decision), an offset (decision-2), a "
                            "window (decision-3..decision), all, from_cue, metric, or an index")
    return m["name"], int(m["off"] or 0)


def canonical(name: str, off: int) -> str:
    return name if off == 0 else f"{name}{off:+d}"


def expand(specs: Sequence[str] | str) -> tuple[str, ...]:
    """Single-token specs: windows expanded, offsets normalised, duplicates dropped (first kept)."""
    if isinstance(specs, str):
        specs = [s for s in specs.split(",") if s.strip()]
    out: list[str] = []
    for spec in specs:
        spec = str(spec).strip()
        if ".." in spec:
            lo_s, hi_s = spec.split("..", 1)
            (n1, a), (n2, b) = parse(lo_s), parse(hi_s)
            if n1 != n2 or b < a:
                raise InterpAFError(f"window {spec!r} must go forward from one named position, e.g. "
                                    "decision-3..decision")
            out += [canonical(n1, k) for k in range(a, b + 1)]
        else:
            out.append(canonical(*parse(spec)))
    if not out:
        raise InterpAFError("no positions given; use e.g. cue,end_system,end_user,decision")
    return tuple(dict.fromkeys(out))


def index(spec: str, named: Mapping[str, int], length: int, *, metric: int | None = None) -> int:
    """Token index of a single-token ``spec`` (``name[+-k]``) in a prompt of ``length`` tokens with named
    positions ``named``; ``metric``: the index of the metric position, if the prompt has one. -1 if absent."""
    name, off = parse(spec)
    if name == METRIC and METRIC not in named:
        if metric is None:
            return -1
        base = metric
    elif name in named:
        base = int(named[name])
    else:
        return -1
    i = base + off
    return i if 0 <= i < length else -1


def indices(specs: str | Sequence[str | int], named: Mapping[str, int], length: int, *, metric: int,
            what: str = "prompt") -> list[int]:
    """Every token index the specs name, in a sequence of ``length`` tokens whose metric position is
    ``metric`` (spans, windows, names, offsets, integers). A spec the prompt lacks is a one-line error."""
    items = [specs] if isinstance(specs, (str, int)) else list(specs)
    out: list[int] = []
    for spec in items:
        if isinstance(spec, int) or (isinstance(spec, str) and _INT.match(spec.strip())):
            i = int(spec)
            i = i if i >= 0 else length + i
            if not 0 <= i < length:
                raise InterpAFError(f"position {spec} lies outside {what} (length {length})")
            out.append(i)
            continue
        spec = spec.strip()
        if spec == "all":
            out += list(range(length))
            continue
        if spec == "from_cue":
            if "cue" not in named:
                raise InterpAFError(f"{what} has no cue position; use all, or named positions it has "
                                    f"({', '.join(named)})")
            out += list(range(int(named["cue"]), metric + 1))
            continue
        for single in expand([spec]):
            i = index(single, named, length, metric=metric)
            if i < 0:
                raise InterpAFError(f"position {single!r} is not in {what}; it has {', '.join(named)}, metric (or use "
                                    "all, from_cue, offsets, windows, integers)")
            out.append(i)
    return list(dict.fromkeys(out))


def check_known(specs: Sequence[str], names_seen: set[str], also: Sequence[str] = ()) -> None:
    """Refuse single-token specs whose name no prompt defines (a typo, not an absent cue); ``also``: names
    allowed besides the prompts' own (e.g. ``metric`` where the caller provides it)."""
    valid = set(names_seen) | set(also)
    unknown = sorted({parse(s)[0] for s in specs} - valid)
    if unknown:
        raise InterpAFError(f"position name(s) {', '.join(unknown)} are defined by no prompt; valid names: "
                            f"{', '.join(sorted(valid))}")
