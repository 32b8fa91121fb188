"""``interp-af gap``: measure the compliance gap of a model (free vs paid arm) with paired intervals.

Loads the model (local folder or Hub id, optional PEFT adapter, either backend), renders every query in
both arms of a prompt variant, reads the decision metric, and writes ``gap.json`` plus ``gap.html`` (and
``gap.png`` when a Chrome is available) into ``--out``. Without ``--model`` it measures the built-in model
organism on its own held-out queries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from . import options
from ._app import app


@app.command()
def gap(
    model: options.Model = None,
    adapter: options.Adapter = None,
    backend: options.Backend = "tl",
    queries: options.Queries = None,
    variant: options.Variant = None,
    limit: Optional[int] = typer.Option(None, "--limit", help="Use the first N queries (AdvBench convention: 100)."),
    out: Path = typer.Option(Path("results/gap"), "--out", help="Output folder."),
    dtype: options.Dtype = "float32",
    device: options.Device = "cpu",
    device_map: Optional[str] = typer.Option(None, "--device-map", help="'auto' spreads the model over GPUs."),
    remote: bool = typer.Option(False, "--remote", help="nnsight only: run on NDIF (needs an NDIF API key)."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Allow the model's own code."),
    metric: str = typer.Option("forward", "--metric", help="forward (first divergent token) or generate."),
    batch_size: int = typer.Option(8, "--batch-size", help="Prompts per forward pass."),
    n_boot: int = typer.Option(2000, "--n-boot", help="Bootstrap resamples."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap / sampling seed."),
    temperature: float = typer.Option(0.0, "--temperature", help="generate metric: 0 = greedy."),
    logprobs: bool = typer.Option(False, "--logprobs", help="Also record the full log-probability of both "
                                  "completions (two more passes)."),
) -> None:
    """Measure compliance per arm and the gap, with paired bootstrap intervals (JSON + HTML figure)."""
    from rich.console import Console

    from interp_af.analysis.gap import METRICS, compute_gap
    from interp_af.errors import InterpAFError
    from interp_af.models.handle import load_model
    from interp_af.report.gap import write_gap_figure
    from interp_af.setting.queries import load_queries
    from interp_af.setting.twins import make_twins

    console = Console(stderr=True)
    if metric not in METRICS:
        raise InterpAFError(f"--metric {metric!r} is unknown; use one of {', '.join(METRICS)}")
    if limit is not None and limit < 1:
        raise InterpAFError(f"--limit {limit}: pass a positive number of queries")
    organism = model is None or model == "organism"
    if organism:
        from interp_af.organism import organism_path, organism_queries

        organism_path()   # one line saying the organism is missing, before anything else runs
        model = "organism"
        variant = variant or "organism"
        qs = load_queries(queries, limit=limit) if queries else organism_queries(n=limit or 200)
    else:
        variant = variant or "default"
        qs = load_queries(queries, limit=limit)
    console.print(f"loading {model} ({backend}{', adapter ' + adapter if adapter else ''}) ...")
    handle = load_model(model, backend=backend, adapter=adapter, dtype=dtype, device=device, device_map=device_map,
                        remote=remote, trust_remote_code=trust_remote_code)
    twins = make_twins(handle.tokenizer, qs, variant)
    result = compute_gap(handle, twins, metric=metric, n_boot=n_boot, seed=seed, batch_size=batch_size,
                         temperature=temperature, logprobs=logprobs, config={
                             "model": model, "adapter": adapter or "", "backend": backend, "dtype": dtype,
                             "variant": variant, "queries": str(queries) if queries else "",
                             "limit": limit or 0, "metric": metric})
    json_path = result.save(out)
    figs = write_gap_figure(result, out)
    console.print(str(result))
    print(json_path)
    for f in figs:
        print(f)
