"""What the stage commands share: resolving the target from the ``[model]`` / ``[setting]`` flags, saying
what is being loaded, and printing where results went."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

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


def write_figures(sections: Iterable[Any], out: Path) -> list[Path]:
    """Every figure of ``sections`` as a file under ``out`` (HTML; PNG when a Chrome is present)."""
    from interp_af.report.figures import write_figure

    written: list[Path] = []
    for s in sections:
        for block in s.figures:
            written += write_figure(block.figure, out / block.key)
    return written


def done(paths: Iterable[Path]) -> None:
    """Print the files a command wrote, one per line on stdout (scripts read them)."""
    for p in paths:
        print(p)
