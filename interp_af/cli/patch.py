"""``interp-af patch`` and ``interp-af steer``: causal tests of where the compliance gap flows.

``patch`` runs exact activation patching between the free and paid twins of each query (denoising and/or
noising) on the chosen sites, optionally attribution patching (AtP or integrated gradients) validated against
exact patching on the top-k cells, and writes each grid as ``patch.json`` + ``patch.safetensors`` with a
heatmap. ``steer`` adds (or projects out) a direction - the twins' mean difference at a layer, or a vector
from a file - at chosen layers and positions, with flipped and norm-matched random controls, and writes the
dose-response over alpha. Without ``--model`` both use the built-in model organism.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from . import options
from ._app import app


def _ints(text: Optional[str], what: str) -> Optional[list[int]]:
    from interp_af.errors import InterpAFError

    if text is None or text == "":
        return None
    try:
        return [int(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        raise InterpAFError(f"{what} {text!r} is not a comma-separated list of integers, e.g. 0,1,2") from None


def _floats(text: str, what: str) -> list[float]:
    from interp_af.errors import InterpAFError

    try:
        return [float(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        raise InterpAFError(f"{what} {text!r} is not a comma-separated list of numbers, e.g. -2,-1,1,2") from None


def _setup(model: Optional[str], adapter: Optional[str], backend: str, queries: Optional[Path],
           variant: Optional[str], limit: Optional[int], dtype: str, device: str, drop_misaligned: bool) -> tuple[Any, list]:
    """Load the model and build twins (the organism and its held-out queries when ``model`` is None)."""
    from rich.console import Console

    from interp_af.errors import InterpAFError
    from interp_af.models.handle import load_model
    from interp_af.setting.queries import load_queries
    from interp_af.setting.twins import make_twins

    console = Console(stderr=True)
    if limit is not None and limit < 1:
        raise InterpAFError(f"--limit {limit}: pass a positive number of queries")
    if model is None or model == "organism":
        from interp_af.organism import organism_path, organism_queries

        organism_path()
        model, variant = "organism", variant or "organism"
        qs = load_queries(queries, limit=limit) if queries else organism_queries(n=limit or 16)
    else:
        variant = variant or "default"
        qs = load_queries(queries, limit=limit or 16)
    console.print(f"loading {model} ({backend}) ...")
    handle = load_model(model, backend=backend, adapter=adapter, dtype=dtype, device=device)
    twins = make_twins(handle.tokenizer, qs, variant)
    if drop_misaligned:
        kept = [t for t in twins if t.aligned]
        if len(kept) < len(twins):
            console.print(f"dropped {len(twins) - len(kept)} misaligned twin(s) of {len(twins)}")
        if not kept:
            raise InterpAFError(f"no twin of variant {variant!r} is aligned under this tokenizer; pick a variant "
                                "whose cue values tokenize to the same length")
        twins = kept
    return handle, twins


@app.command()
def patch(
    model: options.Model = None,
    adapter: options.Adapter = None,
    backend: options.Backend = "tl",
    queries: options.Queries = None,
    variant: options.Variant = None,
    limit: Optional[int] = typer.Option(None, "--limit", help="Number of queries (default 16)."),
    site: list[str] = typer.Option(["resid_pre"], "--site", help="resid_pre, resid_post, attn_out, mlp_out, "
                                   "head_out (repeat the option for several)."),
    direction: str = typer.Option("both", "--direction", help="denoise (clean into corrupt), noise, or both."),
    clean: str = typer.Option("a", "--clean", help="Which arm is clean: a (the variant's first arm) or b."),
    by_position: Optional[bool] = typer.Option(None, "--by-position/--all-positions", help="Cells per position "
                                               "(default: yes for resid sites, no otherwise)."),
    layers: Optional[str] = typer.Option(None, "--layers", help="Comma-separated layers (default: all)."),
    heads: Optional[str] = typer.Option(None, "--heads", help="Comma-separated heads for head_out (default: all)."),
    attribution: str = typer.Option("none", "--attribution", help="none, atp, ig or both: also run attribution "
                                    "patching and validate it against exact patching."),
    steps: int = typer.Option(10, "--steps", help="Integrated-gradients steps."),
    validate_k: int = typer.Option(20, "--validate-k", help="Top-k cells per site checked exactly."),
    drop_misaligned: bool = typer.Option(False, "--drop-misaligned", help="Skip twins that do not align "
                                         "instead of stopping with an error."),
    out: Path = typer.Option(Path("results/patch"), "--out", help="Output folder."),
    dtype: options.Dtype = "float32",
    device: options.Device = "cpu",
    batch_size: int = typer.Option(64, "--batch-size", help="Patched rows per forward pass."),
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap resamples over queries."),
) -> None:
    """Exact activation patching free <-> paid (+ optional attribution patching), with heatmaps."""
    from rich.console import Console

    from interp_af.analysis.patching import DIRECTIONS, patch_twins
    from interp_af.errors import InterpAFError
    from interp_af.report.patching import attribution_scatter, patch_heatmap, write_figure

    console = Console(stderr=True)
    dirs = list(DIRECTIONS) if direction == "both" else [direction]
    if any(d not in DIRECTIONS for d in dirs):
        raise InterpAFError(f"--direction {direction!r} is unknown; use denoise, noise or both")
    methods = {"none": [], "atp": ["atp"], "ig": ["ig"], "both": ["atp", "ig"]}.get(attribution)
    if methods is None:
        raise InterpAFError(f"--attribution {attribution!r} is unknown; use none, atp, ig or both")
    handle, twins = _setup(model, adapter, backend, queries, variant, limit, dtype, device, drop_misaligned)
    L, H = _ints(layers, "--layers"), _ints(heads, "--heads")
    for s in site:
        for d in dirs:
            res = patch_twins(handle, twins, site=s, direction=d, clean=clean, by_position=by_position, layers=L,
                              heads=H if s == "head_out" else None, batch_size=batch_size, n_boot=n_boot)
            folder = res.save(out / f"{s}_{d}")
            figs = write_figure(patch_heatmap(res), folder, "heatmap")
            console.print(f"{s} {d}: {res.info['cells_computed']} of {res.info['cells_total']} cells computed; "
                          f"max effect {float(res.effect().max()):+.3f}")
            print(folder / "patch.json")
            for f in figs:
                print(f)
    if methods:
        from interp_af.analysis.attribution import attribute, validate_attribution

        for method in methods:
            est = attribute(handle, twins, sites=tuple(site), method=method, steps=steps, clean=clean, layers=L,
                            n_boot=n_boot)
            check = validate_attribution(handle, twins, est, k=validate_k, batch_size=batch_size)
            folder = out / f"attribution_{method}"
            for s, r in est.items():
                r.save(folder / s)
            check.to_frame().to_csv(folder / "validation.csv", index=False)
            figs = write_figure(attribution_scatter(check), folder, "scatter")
            console.print(f"{method}: Spearman vs exact (top {validate_k}) " +
                          ", ".join(f"{s} {v:.2f}" for s, v in check.spearman.items()))
            print(folder / "validation.csv")
            for f in figs:
                print(f)


def _load_direction(path: Path) -> Any:
    """A vector from ``.safetensors`` (key 'direction' or the only 1-D tensor), ``.npy``, ``.pt``-free JSON list."""
    import json

    import torch

    from interp_af.errors import InterpAFError

    if not path.exists():
        raise InterpAFError(f"--direction-file {path} does not exist; pass a .safetensors, .npy or .json vector")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        t = load_file(str(path))
        if "direction" in t:
            return t["direction"].flatten()
        vecs = [v for v in t.values() if v.dim() == 1 or (v.dim() == 2 and 1 in v.shape)]
        if len(vecs) != 1:
            raise InterpAFError(f"{path} holds {sorted(t)}; name the vector 'direction'")
        return vecs[0].flatten()
    if path.suffix == ".npy":
        import numpy as np

        return torch.from_numpy(np.load(path)).flatten().float()
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        return torch.tensor(data["direction"] if isinstance(data, dict) else data, dtype=torch.float32)
    raise InterpAFError(f"--direction-file {path}: unsupported type; use .safetensors, .npy or .json")


@app.command()
def steer(
    model: options.Model = None,
    adapter: options.Adapter = None,
    backend: options.Backend = "tl",
    queries: options.Queries = None,
    variant: options.Variant = None,
    limit: Optional[int] = typer.Option(None, "--limit", help="Number of queries (default 16)."),
    layers: str = typer.Option(..., "--layers", help="Comma-separated layers to edit, e.g. 2 or 1,2."),
    direction_file: Optional[Path] = typer.Option(None, "--direction-file", help="Vector to steer along "
                                                  "(.safetensors/.npy/.json); default: the twins' mean difference."),
    source_layer: Optional[int] = typer.Option(None, "--source-layer", help="Layer of the mean difference "
                                               "(default: the first of --layers)."),
    source_position: str = typer.Option("metric", "--source-position", help="Position of the mean difference: "
                                        "metric (where the metric is read), decision, cue, end_user, ..."),
    site: str = typer.Option("resid_post", "--site", help="resid_pre, resid_post, attn_out or mlp_out."),
    positions: str = typer.Option("all", "--positions", help="all, from_cue, metric, or named positions (comma-separated)."),
    op: str = typer.Option("add", "--op", help="add (steer) or project_out (ablate)."),
    alphas: str = typer.Option("-2,-1,-0.5,0.5,1,2", "--alphas", help="Multipliers of the direction."),
    n_random: int = typer.Option(3, "--n-random", help="Norm-matched random control directions."),
    generate: int = typer.Option(0, "--generate", help="Also decode N tokens greedily (steered, alpha = the "
                                 "largest) for the first few paid prompts."),
    drop_misaligned: bool = typer.Option(False, "--drop-misaligned", help="Skip twins that do not align."),
    out: Path = typer.Option(Path("results/steer"), "--out", help="Output folder."),
    dtype: options.Dtype = "float32",
    device: options.Device = "cpu",
    batch_size: int = typer.Option(32, "--batch-size", help="Rows per forward pass."),
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap resamples over queries."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random control directions."),
) -> None:
    """Steer or ablate along a direction: dose-response of compliance per arm and gap closed, with controls."""
    import dataclasses
    import json

    from rich.console import Console

    from interp_af.analysis.steering import generate_steered, mean_difference
    from interp_af.analysis.steering import steer as run_steer
    from interp_af.report.patching import write_figure
    from interp_af.report.steering import dose_response

    console = Console(stderr=True)
    L = _ints(layers, "--layers") or []
    pos: Any = positions if positions in ("all", "from_cue", "metric") else positions.split(",")
    handle, twins = _setup(model, adapter, backend, queries, variant, limit, dtype, device, drop_misaligned)
    if direction_file is not None:
        d = _load_direction(direction_file)
        source = str(direction_file)
    else:
        src_layer = source_layer if source_layer is not None else (L[0] if L else 0)
        d = mean_difference(handle, twins, layer=src_layer, site=site, position=source_position)
        source = f"mean difference {site}.{src_layer} @ {source_position}"
    res = run_steer(handle, twins, d, layers=L, alphas=_floats(alphas, "--alphas"), op=op, site=site, positions=pos,
                    n_random=n_random, batch_size=batch_size, n_boot=n_boot, seed=seed)
    res = dataclasses.replace(res, info={**res.info, "direction_source": source})
    folder = res.save(out)
    df = res.to_frame()
    df.to_csv(folder / "steer.csv", index=False)
    figs = write_figure(dose_response(res), folder, "dose_response")
    top = df[(df.control == "direction") & (df.steered_arm == 1)].sort_values("closed", ascending=False).head(1)
    if len(top):
        console.print(f"direction ({source}): best alpha {top.alpha.iloc[0]:+g} closes {top.closed.iloc[0]:.0%} "
                      f"of the gap on {res.arms[1]} prompts; cue-embedding cosine {res.cue_cosine}")
    if generate > 0:
        alpha = max(res.alphas, key=abs)
        texts = generate_steered(handle, [t.b for t in twins[:4]], d, layers=L, alpha=alpha, op=op, site=site,
                                 positions=pos,
                                 max_new_tokens=generate)
        (folder / "generations.json").write_text(json.dumps({"alpha": alpha, "texts": texts}, indent=2))
        for t in texts:
            console.print(repr(t))
    print(folder / "steer.json")
    for f in figs:
        print(f)
