"""``interp-af targets``: the registered study targets (what ``--model NAME`` and ``[model] path`` accept besides
a folder or a Hub id), with their main variant, contrasts and shipped SAEs."""

from __future__ import annotations

from ._app import app


@app.command("targets")
def targets() -> None:
    """List the registered targets (the default one first)."""
    from rich.console import Console
    from rich.table import Table

    from interp_af.targets import default_target, list_targets

    default = default_target().name
    table = Table(title="targets (interp-af ... --model NAME)")
    for col in ("name", "main variant", "contrasts", "SAEs", "description"):
        table.add_column(col)
    for t in sorted(list_targets(), key=lambda t: t.name != default):
        table.add_row(t.name + (" (default)" if t.name == default else ""), t.variant, ", ".join(t.contrasts),
                      "yes" if t.saes else "-", t.description + (f" [{t.weights_note}]" if t.weights_note else ""))
    Console().print(table)
