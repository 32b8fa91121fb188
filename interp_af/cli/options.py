"""Command-line options generated from the config dataclasses, so a flag, a TOML key and an API argument are one
declaration (:mod:`interp_af.options`): same name (``n_boot`` is ``--n-boot``), same default, same help, same
checks. :func:`with_configs` adds every option of the named config classes to a command and hands the command
one validated config instance per table.

List-valued options are comma-separated on the command line (``--sites resid_pre,head_out``; an option whose
items may hold commas says which separator it takes); integer lists also take ranges (``--layers 0,2-5``); an
empty string gives the empty list (``--contrasts ""``: none).
Booleans are ``--x/--no-x``.
"""

from __future__ import annotations

import functools
import inspect
import typing
from typing import Annotated, Any, Callable, Optional

import typer

from interp_af.errors import InterpAFError
from interp_af.options import check_values, options_of

def _flag(cls: type, name: str, rename: dict[str, str]) -> str:
    return "--" + rename.get(name, name).replace("_", "-")


def _show_default(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value)) if value else "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "(the target's)"
    if value == "":
        return '""'
    return str(value)


def parse_ints(text: str, flag: str) -> tuple[int, ...]:
    """``"0,2-5"`` -> ``(0, 2, 3, 4, 5)``; ``""`` or ``"all"`` -> ``()``."""
    if text.strip().lower() in ("", "all"):
        return ()
    out: list[int] = []
    try:
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            if "-" in part[1:]:
                lo, hi = (int(x) for x in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                out.extend(range(lo, hi + 1))
            else:
                out.append(int(part))
    except ValueError:
        raise InterpAFError(f"{flag} {text!r} is not a list of integers; use e.g. 0,4,8 or 2-6") from None
    return tuple(dict.fromkeys(out))


def parse_list(text: str, item: type, flag: str, sep: str = ",") -> tuple[Any, ...]:
    if item is int:
        return parse_ints(text, flag)
    parts = [p.strip() for p in text.split(sep) if p.strip()]
    if item is float:
        try:
            return tuple(float(p) for p in parts)
        except ValueError:
            raise InterpAFError(f"{flag} {text!r} is not a list of numbers; use e.g. -2,-1,1,2") from None
    return tuple(parts)


def _cli_type(hint: Any, sep: str = ",") -> tuple[Any, Callable[[Any, str], Any]]:
    """The type typer parses, and how its value becomes the config's."""
    base = hint
    if typing.get_origin(hint) in (typing.Union, getattr(__import__("types"), "UnionType")):
        base = next(a for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(base) is tuple:
        item = next(a for a in typing.get_args(base) if a is not Ellipsis)
        return str, lambda v, flag: parse_list(v, item, flag, sep)
    return base, lambda v, flag: v


def with_configs(**tables: Any) -> Callable[[Callable], Callable]:
    """Add the options of each config class to a command: ``@with_configs(model=ModelConfig, gap=GapConfig)``.

    A table may be given as ``(cls, {"rename": {field: flag}, "exclude": (field, ...), "short": {field: "-m"}})``.
    The command function receives ``model=<ModelConfig>``, ``gap=<GapConfig>``, ... built from the flags given
    (the rest take the dataclass defaults) and checked, with errors naming the flag."""

    def deco(fn: Callable) -> Callable:
        sig = inspect.signature(fn)
        hints = typing.get_type_hints(fn, include_extras=True)   # resolve the command's own (string) annotations
        own = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in sig.parameters.values()
               if p.name not in tables]
        generated: list[inspect.Parameter] = []
        plan: dict[str, list[tuple[str, str, str, Callable]]] = {}
        for table, spec in tables.items():
            cls, opts = spec if isinstance(spec, tuple) else (spec, {})
            rename, exclude, short = opts.get("rename", {}), set(opts.get("exclude", ())), opts.get("short", {})
            plan[table] = []
            for f, hint, ospec in options_of(cls):
                if not ospec.cli or f.name in exclude:
                    continue
                flag = _flag(cls, f.name, rename)
                typ, convert = _cli_type(hint, ospec.sep)
                decls = [f"{flag}/--no-{flag[2:]}" if typ is bool else flag] + ([short[f.name]] if f.name in short else [])
                default = f.default if f.default is not inspect.Parameter.empty else None
                help_text = f"{ospec.help} (default: {_show_default(default)})"
                pname = f"{table}__{f.name}"
                generated.append(inspect.Parameter(
                    pname, inspect.Parameter.KEYWORD_ONLY, default=None,
                    annotation=Annotated[Optional[typ], typer.Option(*decls, help=help_text, show_default=False)]))
                plan[table].append((pname, f.name, flag, convert))

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> Any:
            configs = {}
            for table, spec in tables.items():
                cls = spec[0] if isinstance(spec, tuple) else spec
                values, flags = {}, {}
                for pname, name, flag, convert in plan[table]:
                    raw = kwargs.pop(pname)
                    if raw is not None:
                        values[name] = convert(raw, flag)
                        flags[name] = flag
                try:
                    configs[table] = cls(**check_values(cls, values, lambda n, flags=flags: flags.get(n, n)))
                except InterpAFError as err:  # a cross-field check of __post_init__ names "Class.field": say the flag
                    msg = str(err)
                    for pname, name, flag, convert in plan[table]:
                        msg = msg.replace(f"{cls.__name__}.{name} ", f"{flag} ")
                    raise InterpAFError(msg) from None
            return fn(**kwargs, **configs)

        params = own + generated
        wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        del wrapper.__wrapped__  # typer must read the new signature, not the original function's
        return wrapper

    return deco


MODEL = dict(short={"path": "-m"}, rename={"path": "model"})
