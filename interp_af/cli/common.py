"""What the stage commands share: resolving the target from the ``[model]`` / ``[setting]`` flags, saying
what is being loaded, and printing where results went."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable  # noqa: F401

from rich.console import Console

from interp_af.errors import InterpAFError

console = Console(stderr=True)


def target(model: Any, setting: Any, *, progress: bool = True) -> Any:
    """The resolved target of a command (model loaded lazily), with its variants, device, adapter and query file
    checked before any loading."""
    from interp_af.targets import resolve
    from interp_af.targets.preflight import check_model_config, check_setting_files

    check_model_config(model)
    check_setting_files(setting)
    t = resolve(model, setting, progress=progress)
    t.check_variants()
    return t


def preflight(t: Any, *, layers: dict[str, Any] | None = None, heads: dict[str, Any] | None = None,
              positions: dict[str, Any] | None = None) -> None:
    """What needs the model's config and tokenizer but not its weights: the model folder is there with weights,
    the requests read, and every layer / head / named position (``{flag: values}``) exists."""
    from interp_af.targets.preflight import check_heads, check_layers, check_query_lengths, model_shape

    model_shape(t)  # resolves the folder: a missing or weightless model is one line before anything else
    t.queries  # noqa: B018 - reads the query file (encoding, columns, emptiness) before any output folder exists
    check_query_lengths(t)
    for flag, specs in (positions or {}).items():
        from interp_af.setting.positions import check_known, expand
        from interp_af.setting.twins import render_arms

        names: set[str] = set()
        for v in t.variants:  # the names a prompt defines are structural: two requests per variant tell them
            for p in render_arms(t.tokenizer, t.queries[:2], t.variant(v), progress=False):
                names |= set(p.positions)
        try:
            check_known(expand(specs), names)
        except InterpAFError as err:
            raise InterpAFError(f"{flag}: {err}") from None
    for flag, values in (layers or {}).items():
        check_layers(t, values or (), flag)
    for flag, values in (heads or {}).items():
        check_heads(t, values or (), flag)


def _foreign(p: Path, flag: str) -> InterpAFError | None:
    from interp_af import owned

    if not p.is_dir() or owned.is_owned(p):
        return None
    from interp_af import atomic

    names = sorted(os.listdir(p))
    if not names or all(atomic.is_stale_temp(n) for n in names):  # a killed claim's temporary marker: ours
        return None
    shown = ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")
    return InterpAFError(f"{flag} {p}: the folder is not empty and was not written by interp_af ({len(names)} "
                         f"entr{'y' if len(names) == 1 else 'ies'}: {shown}); choose a new or empty folder (interp_af "
                         f"never writes into or deletes someone else's files)")


def check_out(out: Path | None, *, flag: str = "--out", kind: str = "folder") -> None:
    """Refuse an output path before any computation, without creating anything: a file where a folder goes (or
    the reverse), a path running through a file, a non-empty folder interp_af did not write (``kind="folder"``)."""
    if out is None:
        return
    p = Path(out)
    q = p.parent
    while not q.exists() and q != q.parent:
        q = q.parent
    if q.exists() and not q.is_dir():
        raise InterpAFError(f"{flag} {p}: {q} is a file, so no {kind} can be created under it; choose another path")
    if kind == "file":
        if p.is_dir():
            raise InterpAFError(f"{flag} {p} is a folder; give the path of a file to write (e.g. {p}/summary.json)")
        return
    if p.exists() and not p.is_dir():
        raise InterpAFError(f"{flag} {p} is a file, not a folder; choose a folder path for the output")
    err = _foreign(p, flag)
    if err is not None:
        raise err


def claim_out(out: Path, *, what: str, flag: str = "--out") -> Path:
    """Create (or accept, when empty or already interp_af's) the output folder with its ownership marker, after
    :func:`check_out` and every other check passed and before the model loads."""
    from interp_af import owned

    check_out(out, flag=flag)
    try:
        return owned.claim_dir(out, what=what, hint=f"choose a new or empty {flag} folder")
    except InterpAFError as err:
        if str(err).startswith("cannot finish creating"):
            raise InterpAFError(f"{flag} {out}: {err}; choose a folder you can write to") from None
        raise


def loading(t: Any) -> None:
    console.print(f"[dim]target: {t.describe()}[/dim]", highlight=False)


def write_figures(contribution: Any, out: Path) -> list[Path]:
    """Every figure of a stage's report contribution as a file under ``out`` (HTML sharing one
    ``out/plotly.min.js``; PNG when a Chrome is present)."""
    from interp_af.report.figures import write_figure

    written: list[Path] = []
    for s in contribution.sections:
        for block in s.figures:
            if block.figure is not None:
                written += write_figure(block.figure, out / block.key, js=out / "plotly.min.js")
    return written


def done(paths: Iterable[Path], t: Any = None) -> None:
    """Print the target's notes (capped limits, ...) on stderr and the files a command wrote, one per line on
    stdout (scripts read them)."""
    for note in getattr(t, "notes", ()) or ():
        console.print(f"note: {note}", highlight=False, markup=False)
    for p in paths:
        print(p)
