"""Range checks for the sizes and numbers the API accepts, so nonsense fails at once and in one line.

A ``batch_size`` of 0 or an ``n_boot`` of -1 used to surface as a ``ZeroDivisionError`` or an empty tensor
after the model had loaded (minutes in); a negative temperature was accepted silently. Each public function
that takes a size checks it first, with these helpers, and the error names the argument, the value and what
would be valid. ``bool`` is refused where a number is expected (``True`` is an ``int`` in Python, and
``batch_size=True`` is a mistake, not 1).
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Iterable

from interp_af.errors import InterpAFError

__all__ = ["positive_int", "nonneg_int", "int_at_least", "positive_float", "nonneg_float", "fraction",
           "finite_floats"]


def _int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InterpAFError(f"{name}={value!r} is not a whole number; pass an integer")
    return int(value)


def _real(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InterpAFError(f"{name}={value!r} is not a number; pass a number")
    v = float(value)
    if math.isnan(v) or math.isinf(v):
        raise InterpAFError(f"{name}={value!r} is not a finite number; pass a finite number")
    return v


def int_at_least(value: object, name: str, lo: int, why: str = "") -> int:
    """``value`` as an int if it is >= ``lo``; else one line naming ``name``."""
    v = _int(value, name)
    if v < lo:
        raise InterpAFError(f"{name}={v} is out of range; it must be >= {lo}{f' ({why})' if why else ''}")
    return v


def positive_int(value: object, name: str, why: str = "") -> int:
    """A count or size that must be >= 1 (batch_size, n_boot, steps, k, limit ...)."""
    return int_at_least(value, name, 1, why)


def nonneg_int(value: object, name: str, why: str = "") -> int:
    """A count that may be 0 (``n_random=0``: no random controls)."""
    return int_at_least(value, name, 0, why)


def positive_float(value: object, name: str, why: str = "") -> float:
    v = _real(value, name)
    if v <= 0:
        raise InterpAFError(f"{name}={v:g} is out of range; it must be > 0{f' ({why})' if why else ''}")
    return v


def nonneg_float(value: object, name: str, why: str = "") -> float:
    """E.g. a sampling temperature: 0 = greedy, negative is meaningless."""
    v = _real(value, name)
    if v < 0:
        raise InterpAFError(f"{name}={v:g} is out of range; it must be >= 0{f' ({why})' if why else ''}")
    return v


def fraction(value: object, name: str, *, lo_open: bool = True, hi_open: bool = True) -> float:
    """A probability-like number in (0, 1) (a confidence ``level``); ``lo_open=False`` admits 0,
    ``hi_open=False`` admits 1."""
    v = _real(value, name)
    lo_ok = v > 0 if lo_open else v >= 0
    hi_ok = v < 1 if hi_open else v <= 1
    if not (lo_ok and hi_ok):
        rng = f"{'(' if lo_open else '['}0, 1{')' if hi_open else ']'}"
        raise InterpAFError(f"{name}={v:g} is out of range; it must lie in {rng}")
    return v


def finite_floats(values: Iterable[object], name: str, *, nonempty: bool = True) -> tuple[float, ...]:
    """A sequence of finite numbers (steering ``alphas``)."""
    if isinstance(values, (str, bytes)):
        raise InterpAFError(f"{name}={values!r} is not a list of numbers; pass e.g. {name}=(0, 2, 4)")
    try:
        out = tuple(_real(v, name) for v in values)
    except TypeError:
        raise InterpAFError(f"{name}={values!r} is not a list of numbers; pass e.g. {name}=(0, 2, 4)") from None
    if nonempty and not out:
        raise InterpAFError(f"{name} is empty; pass at least one value")
    return out
