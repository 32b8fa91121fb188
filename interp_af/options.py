"""Declaring an option once: its default, its help text and its valid values, for the TOML, the API and the CLI.

Every analysis has one frozen config dataclass (``GapConfig``, ``ProbesConfig``, ...). Its fields are declared
with :func:`option`, which records the help text (the CLI's ``--help`` and the TOML docs) and the constraints
(``choices``, ``min``, ``max``, ``items`` for the members of a tuple). :func:`check_values` validates raw values
against those constraints *before* anything expensive runs, with a caller-supplied label so that the error
names the input the way the user wrote it: ``study.toml:12: [probes] folds = 1 must be >= 2`` from a TOML file,
``--folds 1 must be >= 2`` from the command line, ``ProbesConfig.folds = 1 must be >= 2`` from Python
(``__post_init__`` of each config calls :func:`validate`).

The idea follows sparsify's config dataclasses that double as the command line: one declaration, three
front-ends, identical defaults everywhere.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from interp_af.errors import InterpAFError

__all__ = ["option", "OptionSpec", "spec_of", "options_of", "check_values", "validate", "coerce", "Label"]

Label = Callable[[str], str]   # field name -> how the user spells it ("--folds", "study.toml:3: [probes] folds")


@dataclass(frozen=True)
class OptionSpec:
    """What a config field declares besides its type and default."""

    help: str
    choices: tuple[Any, ...] | None = None     # the value (or every item of a tuple) must be one of these
    min: float | None = None                   # numbers (or every item of a tuple) must be >= min
    max: float | None = None
    min_items: int | None = None               # tuples: at least this many items
    cli: bool = True                           # False: TOML/API only (e.g. options that only a study uses)
    sep: str = ","                             # tuples on the command line: the item separator


def option(default: Any, help: str, *, choices: Sequence[Any] | None = None, min: float | None = None,
           max: float | None = None, min_items: int | None = None, cli: bool = True, sep: str = ",") -> Any:
    """A dataclass field with a help text and constraints (see :class:`OptionSpec`)."""
    spec = OptionSpec(help, tuple(choices) if choices is not None else None, min, max, min_items, cli, sep)
    return field(default=default, metadata={"option": spec})


def spec_of(f: dataclasses.Field) -> OptionSpec:
    return f.metadata.get("option") or OptionSpec(help="")


def options_of(cls: type) -> list[tuple[dataclasses.Field, Any, OptionSpec]]:
    """``(field, resolved type, spec)`` for every option field of a config dataclass (nested tables excluded)."""
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name], spec_of(f)) for f in dataclasses.fields(cls)
            if not (isinstance(hints[f.name], type) and dataclasses.is_dataclass(hints[f.name]))]


def _tname(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", list: "list", tuple: "list",
            dict: "table"}.get(type(value), type(value).__name__)


def _base(hint: Any) -> tuple[Any, bool]:
    """``(type without Optional, optional?)``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0], True
    return hint, False


def coerce(value: Any, hint: Any, where: str) -> Any:
    """``value`` (as TOML or the CLI parser produced it) as type ``hint``, or a one-line error at ``where``."""
    hint, optional = _base(hint)
    if value is None and optional:
        return None
    if typing.get_origin(hint) is tuple:
        (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
        if not isinstance(value, (list, tuple)):
            raise InterpAFError(f"{where} must be a list of {getattr(item, '__name__', item)}, got {_tname(value)}")
        return tuple(coerce(v, item, where) for v in value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, hint) or (hint in (int, float) and isinstance(value, bool)):
        raise InterpAFError(f"{where} must be {'a ' + hint.__name__ if hint is not int else 'an int'}, "
                            f"got {_tname(value)} {value!r}")
    return value


def _problem(value: Any, spec: OptionSpec) -> str | None:
    items = list(value) if isinstance(value, tuple) else [value]
    if isinstance(value, tuple) and spec.min_items is not None and len(value) < spec.min_items:
        return f"needs at least {spec.min_items} item(s)"
    for v in items:
        if v is None:
            continue
        if spec.choices is not None and v not in spec.choices:
            return f"{v!r} is not one of {', '.join(map(str, spec.choices))}"
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if spec.min is not None and v < spec.min:
                return f"must be >= {spec.min:g}" + (f" (got {v!r})" if isinstance(value, tuple) else "")
            if spec.max is not None and v > spec.max:
                return f"must be <= {spec.max:g}" + (f" (got {v!r})" if isinstance(value, tuple) else "")
    return None


def check_values(cls: type, values: dict[str, Any], label: Label,
                 unknown: Callable[[str], str] | None = None) -> dict[str, Any]:
    """Coerce and check ``values`` (a subset of ``cls``'s fields) against their declarations; returns the coerced
    values. Unknown names are reported with the list of valid ones (``unknown(name)`` words the start of that
    message, e.g. ``"study.toml:3: unknown key '[model] dtyp'"``)."""
    fields = {f.name: (hint, spec) for f, hint, spec in options_of(cls)}
    out: dict[str, Any] = {}
    for name, raw in values.items():
        if name not in fields:
            head = unknown(name) if unknown is not None else f"{label(name)}: unknown key"
            raise InterpAFError(f"{head}; valid keys: {', '.join(sorted(fields))}")
        hint, spec = fields[name]
        value = coerce(raw, hint, label(name))
        problem = _problem(value, spec)
        if problem:
            raise InterpAFError(f"{label(name)} = {_show(raw)}: {problem}")
        out[name] = value
    return out


def _show(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)


def validate(obj: Any) -> None:
    """Check every option of a config instance (called from ``__post_init__``); labels read ``Class.field = v``."""
    cls = type(obj)
    for f, _hint, spec in options_of(cls):
        problem = _problem(getattr(obj, f.name), spec)
        if problem:
            raise InterpAFError(f"{cls.__name__}.{f.name} = {_show(getattr(obj, f.name))}: {problem}")
