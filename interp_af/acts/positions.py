"""Which token of each prompt a captured row is read at: single-token position specs (``name``, ``name+k``,
windows expanded) in the one grammar of :mod:`interp_af.setting.positions`.

A spec that does not exist in a prompt (no ``cue`` in an arm without one, or an offset outside the prompt)
resolves to -1: its row is stored as NaN and flagged in the metadata, never silently filled with zeros.
"""

from __future__ import annotations

from typing import Mapping

from interp_af.setting.positions import canonical, check_known, expand, index, parse

DEFAULT_POSITIONS: tuple[str, ...] = ("cue", "end_system", "end_user", "decision")

__all__ = ["DEFAULT_POSITIONS", "canonical", "check_known", "expand", "resolve", "parse"]


def resolve(spec: str, named: Mapping[str, int], length: int) -> int:
    """Token index of ``spec`` in a prompt of ``length`` tokens with named positions ``named``; -1 if absent."""
    return index(spec, named, length)
