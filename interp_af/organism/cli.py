"""``interp-af organism``: rebuild the built-in model organism from scratch, or evaluate one.

``interp-af organism build --recipe full|small --out DIR --seed N`` generates the synthetic data, trains the
tokenizer and the model on CPU, evaluates it on held-out data and writes everything into DIR.
``interp-af organism eval [--model DIR]`` prints compliance per arm and the gaps per condition (default: the
shipped organism), and the acceptance checks of the organism's issue.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

# a CLI plugin (entry point interp_af.cli: organism): the core command line adds this sub-app as `organism`
app = typer.Typer(help="The built-in model organism: rebuild it from scratch or evaluate it.", no_args_is_help=True)
organism_app = app


def _print_eval(ev) -> None:
    from rich.console import Console

    console = Console()
    for line in ev.lines():
        console.print(line, highlight=False, markup=False)
    for name, ok in ev.acceptance().items():
        console.print(f"{'PASS' if ok else 'FAIL'}  {name}", highlight=False, markup=False)


@organism_app.command("build")
def build_cmd(
    recipe: str = typer.Option("full", help="full (~10 min on 2 cores) or small (a couple of minutes)"),
    out: Path = typer.Option(Path("organism-build"), help="output directory (replaced if it exists)"),
    seed: int = typer.Option(0, help="seed for data, labels, initialisation and order"),
    n_eval: int = typer.Option(200, help="held-out queries for the evaluation written to OUT/eval.json"),
) -> None:
    """Rebuild the organism from scratch into OUT and evaluate it."""
    from interp_af import owned
    from interp_af.errors import InterpAFError
    from interp_af.organism.build import build

    if recipe not in ("full", "small"):
        raise InterpAFError(f"--recipe {recipe!r} is not a recipe; choose full or small")
    if n_eval < 2:
        raise InterpAFError(f"--n-eval {n_eval}: evaluate at least 2 held-out queries")
    if out.exists() and not out.is_dir():
        raise InterpAFError(f"--out {out} is a file, not a folder; choose a folder path for the organism")
    if out.is_dir() and not owned.is_owned(out) and any(out.iterdir()) and not (out / "config.json").is_file():
        names = sorted(p.name for p in out.iterdir())
        raise InterpAFError(f"--out {out}: the folder is not empty and was not written by interp_af ("
                            f"{', '.join(names[:3])}{' ...' if len(names) > 3 else ''}); choose a new or empty folder")
    res = build(recipe, out, seed=seed, n_eval=n_eval)
    _print_eval(res.eval)
    typer.echo(f"organism written to {res.path} (eval: {res.path / 'eval.json'})")


@organism_app.command("eval")
def eval_cmd(
    model: Optional[Path] = typer.Option(None, help="organism directory (default: the shipped one)"),
    n: int = typer.Option(200, help="held-out queries (half harmful)"),
    out: Optional[Path] = typer.Option(None, help="write the results as JSON here"),
    seed: int = typer.Option(0, help="seed of the held-out query sample and bootstrap"),
) -> None:
    """Compliance per arm and gaps per condition on held-out requests and paraphrases."""
    from interp_af.errors import InterpAFError
    from interp_af.organism.evaluate import evaluate

    if n < 2:
        raise InterpAFError(f"--n {n}: evaluate at least 2 queries")
    ev = evaluate(model, n_queries=n, seed=seed, progress=True)
    _print_eval(ev)
    if out is not None:
        typer.echo(f"wrote {ev.save(out)}")
