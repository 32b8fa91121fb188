"""Rebuilding the organism from scratch: train (data -> tokenizer -> model), then evaluate on held-out data,
writing everything into one directory::

    OUT/config.json, model.safetensors, tokenizer.json, tokenizer_config.json, chat_template.jinja
    OUT/train_log.json   (recipe, seconds, validation-gap history)
    OUT/eval.json        (per-condition compliance, gaps with bootstrap intervals, acceptance booleans)

The shipped organism is such a directory in ``interp_af/organism/assets/model`` (its eval also copied to
``assets/eval.json``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .evaluate import OrganismEval, evaluate
from .train import Recipe, recipe, train


@dataclass(frozen=True)
class BuildResult:
    path: Path
    recipe: Recipe
    eval: OrganismEval


def build(recipe_name: str = "full", out_dir: str | Path = "organism-build", *, seed: int = 0,
          n_eval: int = 200, progress: bool = True, **overrides) -> BuildResult:
    """Train the ``recipe_name`` recipe with ``seed`` into ``out_dir`` and evaluate it (``n_eval`` held-out queries)."""
    from interp_af.errors import InterpAFError

    r = recipe(recipe_name, seed=seed, **overrides)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InterpAFError(f"--out {out} is a file; pass a directory (it is replaced by the new build)")
    path = train(r, out, progress=progress)
    ev = evaluate(path, n_queries=n_eval, progress=progress)
    ev.save(path / "eval.json")
    return BuildResult(path=path, recipe=r, eval=ev)
