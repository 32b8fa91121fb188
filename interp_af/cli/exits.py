"""How an ``interp-af`` run ends: the promise of the README, kept in one place.

- **A user's mistake** (an :class:`~interp_af.errors.InterpAFError`, or a usage error of the command-line
  parser: an unknown option, ``--limit abc``, a missing argument, a bare ``interp-af``): ``error: ...`` on one
  line, for usage errors a second line naming the ``--help`` to read, and exit status **2**. Never a traceback.
- **Ctrl-C**: one line and exit status **130** (the shell's convention for SIGINT), so ``interp-af gap && next``
  does not run ``next``. Every file is written atomically (:mod:`interp_af.atomic`), so an interrupted command
  leaves no half-written file; rerunning it resumes where resumable (capture, run).
- **An OS refusal that escaped a writer** (disk full, permission denied): one line naming the path and the fix,
  exit 2.
- **A bug** (any other exception): one line saying so, with the path of a log file holding the traceback, and
  exit status 1. ``interp-af --debug ...`` or ``INTERP_AF_DEBUG=1`` lets the traceback through instead.

Why this needs care: in non-standalone mode typer 0.29 raises its *own vendored* copies of click's exception
classes (``typer._click.exceptions``), not ``click.exceptions``, and it turns ``KeyboardInterrupt`` into a
*returned* 130 rather than an exception. Catching click's classes, or ignoring the return value, gave a
40-line traceback for every usage mistake and exit 0 on Ctrl-C.
"""

from __future__ import annotations

import os
import sys
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn

from interp_af.errors import InterpAFError

__all__ = ["run_app", "debug_requested", "set_debug", "log_dir", "EXIT_USAGE", "EXIT_INTERRUPTED", "EXIT_BUG"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BUG = 1
PROG = "interp-af"
INTERRUPTED = ("interrupted (Ctrl-C); every file written so far is complete and nothing half-written is left: "
               "rerun the same command to resume or start again")

_debug = False


def set_debug(on: bool) -> None:
    """Called by the global ``--debug`` option."""
    global _debug
    _debug = bool(on)


def debug_requested() -> bool:
    return _debug or os.environ.get("INTERP_AF_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def log_dir() -> Path:
    """Where crash logs go: ``$INTERP_AF_LOG_DIR``, else ``$XDG_CACHE_HOME/interp_af/logs`` (``~/.cache/...``)."""
    if os.environ.get("INTERP_AF_LOG_DIR"):
        return Path(os.environ["INTERP_AF_LOG_DIR"])
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "interp_af" / "logs"


def _click_classes() -> dict[str, tuple[type, ...]]:
    """The parser's exception classes by name, from typer's vendored click and from click itself (whichever
    the installed typer raises)."""
    mods: list[Any] = []
    try:
        from typer._click import exceptions as vendored  # typer >= 0.29

        mods.append(vendored)
    except ImportError:
        pass
    try:
        from click import exceptions as upstream

        mods.append(upstream)
    except ImportError:
        pass
    names = ("NoArgsIsHelpError", "UsageError", "BadParameter", "MissingParameter", "ClickException", "Abort", "Exit")
    out = {n: tuple(getattr(m, n) for m in mods if hasattr(m, n)) for n in names}
    import typer

    out["Abort"] += (typer.Abort,)
    out["Exit"] += (typer.Exit,)
    return out


def _err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _given_value(err: Any, argv: list[str]) -> str | None:
    """The value the user gave the option of a BadParameter (the parser's message does not always quote it)."""
    param = getattr(err, "param", None)
    opts = list(getattr(param, "opts", ()) or ()) + list(getattr(param, "secondary_opts", ()) or ())
    for i, a in enumerate(argv):
        for o in opts:
            if a == o and i + 1 < len(argv):
                return argv[i + 1]
            if a.startswith(o + "="):
                return a[len(o) + 1:]
    return None


def _usage_error(err: Any, classes: dict[str, tuple[type, ...]], argv: list[str]) -> NoReturn:
    ctx = getattr(err, "ctx", None)
    path = ctx.command_path if ctx is not None else PROG
    if isinstance(err, classes["NoArgsIsHelpError"]):
        # a bare `interp-af` / `interp-af sae`: the help is what the user needs; it goes to stdout
        print(ctx.get_help() if ctx is not None else "", flush=True)
        _err(f"error: {path}: missing command; choose one of the commands listed above")
        _err(f"try '{path} --help' for the commands")
        raise SystemExit(EXIT_USAGE)
    msg = _one_line(err.format_message())
    if isinstance(err, classes["BadParameter"]) and not isinstance(err, classes["MissingParameter"]):
        value = _given_value(err, argv)
        if value is not None and repr(value) not in msg and f"'{value}'" not in msg:
            msg = f"{msg} (got {value!r})"
    _err(f"error: {msg}")
    _err(f"try '{path} --help' for the options and arguments")
    raise SystemExit(EXIT_USAGE)


def _bug(err: BaseException) -> NoReturn:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    where = "a log file could not be written"
    try:
        d = log_dir()
        d.mkdir(parents=True, exist_ok=True)
        log = d / f"crash-{stamp}-{os.getpid()}.log"
        log.write_text(f"interp-af {' '.join(sys.argv[1:])}\n\n{text}", encoding="utf-8")
        where = f"the traceback is in {log}"
    except OSError:
        pass
    head = _one_line(f"{type(err).__name__}: {err}")[:300]
    _err(f"error: internal error (a bug in interp_af, not in your input): {head}; {where}; please report it "
         f"(rerun with --debug to see the traceback)")
    raise SystemExit(EXIT_BUG)


def run_app(typer_app: Any, argv: list[str] | None = None) -> NoReturn:
    """Run ``typer_app`` in non-standalone mode and end the process as the module docstring says."""
    args = list(sys.argv[1:] if argv is None else argv)
    set_debug(args[:1] == ["--debug"])  # the global option's callback sets it too; never left over from a last run
    classes = _click_classes()
    from interp_af import atomic

    try:
        rv = typer_app(args=args, prog_name=PROG, standalone_mode=False)
    except SystemExit:
        raise
    except InterpAFError as err:
        if debug_requested():
            raise
        _err(f"error: {_one_line(str(err))}")
        raise SystemExit(EXIT_USAGE) from None
    except KeyboardInterrupt:
        _err(f"error: {INTERRUPTED}")
        raise SystemExit(EXIT_INTERRUPTED) from None
    except BaseException as err:  # noqa: BLE001 - the one place that turns every ending into the promised one
        if isinstance(err, classes["UsageError"]):
            _usage_error(err, classes, args)
        if isinstance(err, classes["Abort"]):  # typer's Abort: an EOF on a prompt, or Ctrl-C inside one
            _err(f"error: {INTERRUPTED}")
            raise SystemExit(EXIT_INTERRUPTED) from None
        if isinstance(err, classes["Exit"]):
            rv = getattr(err, "exit_code", 0)
        elif isinstance(err, classes["ClickException"]):
            _err(f"error: {_one_line(err.format_message())}")
            raise SystemExit(EXIT_USAGE) from None
        elif isinstance(err, OSError) and atomic.is_user_os_error(err) and not debug_requested():
            path = err.filename or "a file"
            _err(f"error: {_one_line(str(atomic.os_error(err, path)))}")
            raise SystemExit(EXIT_USAGE) from None
        elif debug_requested():
            raise
        else:
            _bug(err)
    # in non-standalone mode typer *returns* the exit code of an Exit (130 for a KeyboardInterrupt it caught)
    if rv == EXIT_INTERRUPTED:
        _err(f"error: {INTERRUPTED}")
        raise SystemExit(EXIT_INTERRUPTED)
    raise SystemExit(rv if isinstance(rv, int) and not isinstance(rv, bool) else 0)
