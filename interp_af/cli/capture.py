"""``interp-af capture``: write activations of every prompt (both arms of each query) to a folder on disk.

Loads the model (local folder or Hub id, optional PEFT adapter, either backend), renders every query in every
arm of a prompt variant, and captures the chosen sites x layers at the chosen named positions, with per-row
labels and the compliance metric (see ``interp_af/capture/FORMAT.md``). Interrupted runs resume when rerun
with the same options; a folder holding another model's / prompt set's / config's capture is refused unless
``--overwrite``. Without ``--model`` it captures the built-in model organism on its held-out queries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from . import options
from ._app import app


def parse_layers(text: str | None) -> list[int] | None:
    """"all" / "" -> None (every layer); "0,3,5" and ranges "2-6" (inclusive) -> sorted layer list."""
    from interp_af.errors import InterpAFError

    if text is None or text.strip().lower() in ("", "all"):
        return None
    layers: set[int] = set()
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                layers.update(range(lo, hi + 1))
            elif part:
                layers.add(int(part))
    except ValueError:
        raise InterpAFError(f"--layers {text!r} is not a layer list; use e.g. all, 0,4,8 or 2-6") from None
    return sorted(layers)


def _split(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


@app.command()
def capture(
    model: options.Model = None,
    adapter: options.Adapter = None,
    backend: options.Backend = "tl",
    queries: options.Queries = None,
    variant: options.Variant = None,
    limit: Optional[int] = typer.Option(None, "--limit", help="Use the first N queries."),
    benign: bool = typer.Option(False, "--benign/--no-benign", help="Also capture the built-in benign control set."),
    sites: str = typer.Option("resid_post", "--sites", help="Comma-separated: resid_pre, resid_post, attn_out, "
                              "mlp_out, head_out."),
    layers: str = typer.Option("all", "--layers", help="all, a list (0,4,8) or ranges (2-6)."),
    positions: str = typer.Option("cue,end_system,end_user,decision", "--positions",
                                  help="Named positions, offsets (decision-1) or windows (decision-7..decision)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default: captures/<model>-<variant>)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a capture of another model/prompts/config."),
    batch_size: int = typer.Option(16, "--batch-size", help="Prompts per forward pass."),
    dtype: options.Dtype = "float32",
    storage_dtype: Optional[str] = typer.Option(None, "--storage-dtype", help="Dtype on disk (default: the "
                                                "model's)."),
    device: options.Device = "cpu",
    device_map: Optional[str] = typer.Option(None, "--device-map", help="'auto' spreads the model over GPUs."),
    remote: bool = typer.Option(False, "--remote", help="nnsight only: run on NDIF (needs an NDIF API key)."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Allow the model's own code."),
    metric: bool = typer.Option(True, "--metric/--no-metric", help="Also read the compliance metric per prompt "
                                "(--no-metric stops after the last captured layer)."),
) -> None:
    """Capture activations (sites x layers x named positions) of every prompt to safetensors + manifest."""
    from rich.console import Console

    from interp_af.capture import capture as run_capture
    from interp_af.errors import InterpAFError
    from interp_af.models.handle import load_model
    from interp_af.setting.queries import benign_queries, load_queries
    from interp_af.setting.twins import render_arms

    console = Console(stderr=True)
    if limit is not None and limit < 1:
        raise InterpAFError(f"--limit {limit}: pass a positive number of queries")
    layer_list = parse_layers(layers)
    organism = model is None or model == "organism"
    if organism:
        from interp_af.organism import organism_path, organism_queries

        model_path = str(organism_path())  # one line saying the organism is missing, before anything else runs
        variant = variant or "organism"
        qs = load_queries(queries, limit=limit) if queries else organism_queries(n=limit or 200)
        name = "organism"
    else:
        model_path = model
        variant = variant or "default"
        qs = load_queries(queries, limit=limit)
        name = Path(model.rstrip("/")).name or "model"
    if benign:
        qs = [*qs, *benign_queries()]
    out = out or Path("captures") / f"{name}-{variant}"
    console.print(f"loading {model_path} ({backend}{', adapter ' + adapter if adapter else ''}) ...")
    handle = load_model(model_path, backend=backend, adapter=adapter, dtype=dtype, device=device,
                        device_map=device_map, remote=remote, trust_remote_code=trust_remote_code)
    prompts = render_arms(handle.tokenizer, qs, variant)
    cap = run_capture(handle, prompts, out, sites=_split(sites), layers=layer_list, positions=_split(positions),
                      batch_size=batch_size, metric=metric, dtype=storage_dtype, overwrite=overwrite,
                      adapter=adapter)
    meta = cap.meta()
    console.print(f"{cap.n_rows} rows x {len(cap.layers)} layers x {len(cap.positions)} positions x "
                  f"{len(cap.sites)} site(s) -> {cap.path}")
    if metric:
        by_arm = meta.groupby("arm")["complied"].mean()
        console.print("compliance (logit_diff > 0) per arm: "
                      + ", ".join(f"{arm} {100 * float(v):.1f}%" for arm, v in by_arm.items()))
    print(cap.path)
