"""What the stage commands share: resolving the target from the ``[model]`` / ``[setting]`` flags, saying
what is being loaded, and printing where results went."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable  # noqa: F401

from rich.console import Console

console = Console(stderr=True)


def target(model: Any, setting: Any, *, progress: bool = True) -> Any:
    """The resolved target of a command (model loaded lazily), with its variants checked before any loading."""
    from interp_af.targets import resolve

    t = resolve(model, setting, progress=progress)
    t.check_variants()
    return t


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
