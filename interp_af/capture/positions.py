"""Position specs: which token of each prompt a captured row is read at.

A capture stores activations at *named* positions of each :class:`~interp_af.setting.types.RenderedPrompt`
(``positions`` maps names such as ``cue``, ``end_system``, ``end_user``, ``decision`` to token indices). A spec
is one of:

- ``name``: the named position itself, e.g. ``decision``;
- ``name+k`` / ``name-k``: ``k`` tokens after / before it, e.g. ``decision-1``;
- ``name-k..name+j``: a window, expanded into one spec per token (``decision-3..decision`` gives
  ``decision-3``, ``decision-2``, ``decision-1``, ``decision``), so every stored array stays
  ``[rows, layers, d]`` and a window is just several positions.

A spec that does not exist in a prompt (no ``cue`` in an arm without one, or an offset outside the prompt)
resolves to -1: its row is stored as NaN and flagged in the metadata, never silently filled with zeros.
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence

from interp_af.errors import InterpAFError

DEFAULT_POSITIONS: tuple[str, ...] = ("cue", "end_system", "end_user", "decision")
_SPEC = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<off>[+-]\d+)?$")


def _parse_one(spec: str) -> tuple[str, int]:
    m = _SPEC.match(spec.strip())
    if not m:
        raise InterpAFError(
            f"position {spec!r} is not a valid spec; use a name (decision), an offset (decision-2) or a window "
            "(decision-3..decision)"
        )
    return m["name"], int(m["off"] or 0)


def canonical(name: str, off: int) -> str:
    return name if off == 0 else f"{name}{off:+d}"


def expand(specs: Sequence[str]) -> tuple[str, ...]:
    """Expand windows and normalise offsets; duplicates are dropped (first occurrence kept)."""
    if isinstance(specs, str):
        specs = [s for s in specs.split(",") if s.strip()]
    out: list[str] = []
    for spec in specs:
        if ".." in spec:
            lo_s, hi_s = spec.split("..", 1)
            (n1, a), (n2, b) = _parse_one(lo_s), _parse_one(hi_s)
            if n1 != n2 or b < a:
                raise InterpAFError(
                    f"window {spec!r} must go forward from one named position, e.g. decision-3..decision"
                )
            out += [canonical(n1, k) for k in range(a, b + 1)]
        else:
            out.append(canonical(*_parse_one(spec)))
    if not out:
        raise InterpAFError("no positions given; use e.g. --positions cue,end_system,end_user,decision")
    return tuple(dict.fromkeys(out))


def resolve(spec: str, named: Mapping[str, int], length: int) -> int:
    """Token index of ``spec`` in a prompt of ``length`` tokens with named positions ``named``; -1 if absent."""
    name, off = _parse_one(spec)
    if name not in named:
        return -1
    i = int(named[name]) + off
    return i if 0 <= i < length else -1


def check_known(specs: Sequence[str], names_seen: set[str]) -> None:
    """Refuse specs whose name no prompt defines (a typo, not an absent cue)."""
    unknown = sorted({_parse_one(s)[0] for s in specs} - names_seen)
    if unknown:
        raise InterpAFError(
            f"position name(s) {', '.join(unknown)} are defined by no prompt; valid names: {', '.join(sorted(names_seen))}"
        )
