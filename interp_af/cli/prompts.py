"""``interp-af prompts``: show exactly what the model will read.

Renders free/paid twins through a tokenizer's chat template and prints one twin's text (cue highlighted),
its named positions, optionally every token (``--tokens``: index, token in each arm, ``≠`` where the twins
differ, which named positions point there), and a summary of all twins (how many align token for token,
lengths, why the others do not).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._app import app


def _tok(tokenizer, i: int) -> str:
    return repr(tokenizer.decode([i]))[1:-1]


def _show_variants(console) -> None:
    from rich.table import Table

    from interp_af.setting.prompts import list_variants

    table = Table(title="prompt variants (interp-af prompts --variant NAME)")
    table.add_column("name")
    table.add_column("arms")
    table.add_column("description")
    for v in list_variants():
        table.add_row(v.name, " / ".join(v.arms), v.description)
    table.add_row("file:PATH", "free / paid", "a user-supplied prompt file (see --system-prompt)")
    console.print(table)


def _show_twin(console, tokenizer, twin, tokens: bool, around: int) -> None:
    from rich.markup import escape
    from rich.table import Table

    a, b = twin.a, twin.b
    status = "[green]aligned[/green]" if twin.aligned else f"[red]not aligned[/red]: {escape(twin.reason)}"
    console.rule(f"query {twin.query_id}: arms {a.arm} vs {b.arm} ({len(a)} / {len(b)} tokens), {status}")
    for p in (a, b):
        if "cue" in p.positions:  # highlight the cue tokens inside the decoded prompt
            lo, hi = p.positions["cue"], p.positions["cue_end"] + 1
            pre, cue = tokenizer.decode(list(p.input_ids[:lo])), tokenizer.decode(list(p.input_ids[lo:hi]))
            tail = tokenizer.decode(list(p.input_ids[hi:]))
            body = f"{escape(pre[-300:])}[bold reverse]{escape(cue)}[/bold reverse]{escape(tail)}"
        else:
            body = escape(p.text[-600:])
        console.print(f"[bold]{p.arm}[/bold] (last part; cue highlighted):\n…{body}\n")
    names = Table(title="named positions")
    for col in ("name", f"index ({a.arm})", f"token ({a.arm})", f"index ({b.arm})", f"token ({b.arm})"):
        names.add_column(col)
    for k in dict.fromkeys([*a.positions, *b.positions]):
        ia, ib = a.positions.get(k), b.positions.get(k)
        names.add_row(k, str(ia if ia is not None else "-"),
                      escape(_tok(tokenizer, a.input_ids[ia])) if ia is not None else "-",
                      str(ib if ib is not None else "-"),
                      escape(_tok(tokenizer, b.input_ids[ib])) if ib is not None else "-")
    console.print(names)
    if not tokens:
        return
    marks_a: dict[int, list[str]] = {}
    for k, i in a.positions.items():
        marks_a.setdefault(i, []).append(k)
    diff = set(twin.diff_positions)
    n = max(len(a), len(b))
    keep = set(range(n))
    if around > 0:
        centres = diff | set(a.positions.values()) | set(b.positions.values())
        keep = {i for c in centres for i in range(c - around, c + around + 1) if 0 <= i < n}
    table = Table(title=f"tokens of query {twin.query_id}")
    for col in ("index", a.arm, b.arm, "diff", "named position"):
        table.add_column(col)
    prev = -1
    for i in sorted(keep):
        if around > 0 and prev >= 0 and i != prev + 1:
            table.add_row("…", "", "", "", "")
        ta = _tok(tokenizer, a.input_ids[i]) if i < len(a) else ""
        tb = _tok(tokenizer, b.input_ids[i]) if i < len(b) else ""
        d = "≠" if i in diff or (not twin.aligned and ta != tb) else ""
        table.add_row(str(i), escape(ta), escape(tb), d, ", ".join(marks_a.get(i, [])))
        prev = i
    console.print(table)


@app.command()
def prompts(
    model: Optional[Path] = typer.Option(None, "--model", help="model directory whose tokenizer renders the prompts"),
    variant: str = typer.Option("default", "--variant", "-v", help="prompt variant (see --list-variants)"),
    queries: Optional[Path] = typer.Option(None, "--queries", "-q", help="CSV/JSONL/text file of requests "
                                           "(default: the built-in AdvBench harmful_behaviors)"),
    column: str = typer.Option("goal", "--column", help="CSV column / JSON key holding the requests"),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", help="use the first N queries"),
    benign: bool = typer.Option(False, "--benign", help="use the built-in benign control set"),
    tokens: bool = typer.Option(False, "--tokens", help="print every token of the shown twin"),
    around: int = typer.Option(0, "--around", help="with --tokens: only tokens within N of a diff/named position"),
    show: int = typer.Option(1, "--show", help="how many twins to display in full"),
    casing: Optional[str] = typer.Option(None, "--casing", help="tag value casing: lower (true/false) or title"),
    system_prompt: Optional[Path] = typer.Option(None, "--system-prompt", help="a prompt file (the paper's prompt, "
                                                 "verbatim; optional '### USER TURN ###' section with {tier} and {request})"),
    user_template: Optional[Path] = typer.Option(None, "--user-template", help="user-turn template file with "
                                                 "{tier} and {request}"),
    out: Optional[Path] = typer.Option(None, "--out", help="also write the summary as JSON here"),
    list_variants_: bool = typer.Option(False, "--list-variants", help="list the prompt variants and exit"),
) -> None:
    """Show rendered free/paid twins with their tokens and named positions, and a summary of all twins."""
    from rich.console import Console

    from interp_af.setting.demo import SettingSummary, build_twins
    from interp_af.setting.twins import summarize_twins

    console = Console()
    if list_variants_:
        _show_variants(console)
        return
    options: dict[str, object] = {}
    if casing is not None:
        options["casing"] = casing
    if system_prompt is not None:
        variant = f"file:{system_prompt}"
        if user_template is not None:
            options["user_file"] = user_template
    elif user_template is not None:
        from interp_af.errors import InterpAFError

        raise InterpAFError(f"--user-template {user_template} needs --system-prompt FILE as well; pass both")
    setup = build_twins(model, variant, queries, limit=limit, column=column, benign=benign, progress=None, **options)
    console.print(f"[dim]{setup.tokenizer_source}[/dim]")
    for twin in setup.twins[: max(show, 0)]:
        _show_twin(console, setup.tokenizer, twin, tokens, around)
    summary = SettingSummary(setup.tokenizer_source, setup.queries_source,
                             summarize_twins(list(setup.twins), setup.tokenizer))
    console.rule("summary")
    for line in summary.lines()[1:]:
        console.print(line, markup=False, highlight=False)
    if out is not None:
        console.print(f"summary written to {summary.save(out)}")
