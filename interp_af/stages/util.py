"""Small helpers the stages share: rounding summaries for ``summary.json`` and writing JSON atomically."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def round_floats(x: Any, nd: int = 4) -> Any:
    """Every float inside ``x`` (dicts, lists, tuples) rounded to ``nd`` decimals: headline numbers are reported
    to 4 decimals, so reruns compare equal across machines whose last float bits differ."""
    if isinstance(x, float):
        return round(x, nd)
    if isinstance(x, tuple):
        return tuple(round_floats(v, nd) for v in x)
    if isinstance(x, list):
        return [round_floats(v, nd) for v in x]
    if isinstance(x, dict):
        return {k: round_floats(v, nd) for k, v in x.items()}
    return x


def rounded(summary: T, nd: int = 4) -> T:
    """A summary dataclass with every float field (nested included) rounded to ``nd`` decimals."""
    from interp_af.stages.base import from_dict

    return from_dict(type(summary), round_floats(dataclasses.asdict(summary), nd))  # type: ignore[arg-type]


def write_json(path: Path, obj: Any) -> Path:
    """``obj`` as indented JSON at ``path``, atomically (never half-written), in a folder the toolkit owns."""
    from interp_af import atomic, owned

    owned.ensure_dir(Path(path).parent, what="results")
    return atomic.write_json(path, obj, default=str)
