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

from interp_af.targets.config import ModelConfig, SettingConfig

from ._app import app
from .options import MODEL, with_configs


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
@with_configs(model=(ModelConfig, MODEL), setting=SettingConfig)
def prompts(
    tokens: bool = typer.Option(False, "--tokens", help="print every token of the shown twin"),
    around: int = typer.Option(0, "--around", min=0, help="with --tokens: only tokens within N of a diff/named position"),
    show: int = typer.Option(1, "--show", min=0, help="how many twins to display in full"),
    system_prompt: Optional[Path] = typer.Option(None, "--system-prompt", help="a prompt file (the paper's prompt, "
                                                 "verbatim; optional '### USER TURN ###' section with {tier} and "
                                                 "{request}); same as --variant file:PATH"),
    user_template: Optional[Path] = typer.Option(None, "--user-template", help="user-turn template file with "
                                                 "{tier} and {request} (with --system-prompt)"),
    out: Optional[Path] = typer.Option(None, "--out", help="also write the summary as JSON here"),
    list_variants_: bool = typer.Option(False, "--list-variants", help="list the prompt variants and exit"),
    model: ModelConfig = None, setting: SettingConfig = None,  # type: ignore[assignment]
) -> None:
    """Show rendered free/paid twins of the main variant with their tokens and named positions, and a summary of
    all its twins. Renders through the target's tokenizer only (no weights are loaded)."""
    import dataclasses

    from rich.console import Console

    from interp_af.errors import InterpAFError
    from interp_af.setting.demo import SettingSummary
    from interp_af.setting.twins import summarize_twins
    from interp_af.targets import resolve

    from . import common

    console = Console()
    common.check_out(out, kind="file")
    if list_variants_:
        _show_variants(console)
        return
    if system_prompt is not None:
        setting = dataclasses.replace(setting, variant=f"file:{system_prompt}", contrasts=())
    elif user_template is not None:
        raise InterpAFError(f"--user-template {user_template} needs --system-prompt FILE as well; pass both")
    from interp_af.targets.preflight import check_model_config, check_setting_files

    check_model_config(model)
    check_setting_files(setting)
    t = resolve(model, setting)
    if user_template is not None:
        from interp_af.setting.custom import load_prompt_file

        opts = {"casing": setting.casing} if setting.casing else {}
        v = load_prompt_file(system_prompt, user_file=user_template, **opts)
        t.use_variant(v)
        t.setting_config = dataclasses.replace(t.setting_config, variant=v.name)
    t.check_variants()
    tok = t.tokenizer
    twins = t.twins()
    console.print(f"[dim]target {t.name}: tokenizer of {t.model_config.path}[/dim]")
    for twin in twins[: max(show, 0)]:
        _show_twin(console, tok, twin, tokens, around)
    qsrc = t.setting_config.queries or f"the target's default requests ({t.name})"
    summary = SettingSummary(f"tokenizer: {t.model_config.path}", qsrc, summarize_twins(list(twins), tok))
    console.rule("summary")
    for line in summary.lines()[1:]:
        console.print(line, markup=False, highlight=False)
    if out is not None:
        console.print(f"summary written to {summary.save(out)}")
