"""``interp-af sae``: SAE features of the compliance gap.

- ``interp-af sae info SOURCE``: load an SAE (sae-lens folder, sparsify folder, or release + ``--sae-id``) and say
  what it is for; with ``--model``, check that it fits (width, site/layer, model name);
- ``interp-af sae train``: train TopK SAEs on a model's residual stream (default: the organism, saved into
  ``interp_af/organism/saes``) with sae-lens's trainer, offline;
- ``interp-af sae run``: quality, differential features, attribution, contexts and the ablation test with random
  controls, for one or more SAEs; JSON + HTML figures into ``--out``.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from . import options
from ._app import app

sae_app = typer.Typer(help="SAE features: load/check, train for the organism, quality, attribution, ablation.",
                      no_args_is_help=True)
app.add_typer(sae_app, name="sae")

ORGANISM_SAES = Path(__file__).resolve().parents[1] / "organism" / "saes"


def _csv_ints(text: str, what: str) -> tuple[int, ...]:
    from interp_af.errors import InterpAFError

    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise InterpAFError(f"{what} {text!r} must be comma-separated integers, e.g. 1,2,3") from None


def _model_and_prompts(model: Optional[str], backend: str, adapter: Optional[str], dtype: str, device: str,
                       variant: Optional[str], queries: Optional[Path], limit: Optional[int], split: str = "eval"):
    """The handle, the twins' prompts (arm a then arm b) and the decision tokens; the organism by default."""
    from interp_af.models.handle import load_model
    from interp_af.models.metric import decision_tokens
    from interp_af.setting.queries import load_queries
    from interp_af.setting.twins import make_twins

    if model is None or model == "organism":
        from interp_af.organism import organism_path, organism_queries

        organism_path()
        model, variant = "organism", variant or "organism"
        qs = load_queries(queries, limit=limit) if queries else organism_queries(split, n=limit or 100)
    else:
        variant = variant or "default"
        qs = load_queries(queries, limit=limit)
    handle = load_model(model, backend=backend, adapter=adapter, dtype=dtype, device=device)
    twins = make_twins(handle.tokenizer, qs, variant)
    prompts = [t.a for t in twins] + [t.b for t in twins]
    return handle, prompts, decision_tokens(handle.tokenizer)


@sae_app.command("info")
def info(
    source: str = typer.Argument(..., help="SAE folder (sae-lens or sparsify format) or a sae-lens release name."),
    sae_id: Optional[str] = typer.Option(None, "--sae-id", help="SAE id inside a release."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Check the fit against this model."),
    site: Optional[str] = typer.Option(None, "--site", help="Override the site the SAE reads."),
    layer: Optional[int] = typer.Option(None, "--layer", help="Override the layer the SAE reads."),
    allow_model_mismatch: bool = typer.Option(False, "--allow-model-mismatch", help="SAE of a sibling model."),
    download: bool = typer.Option(False, "--download", help="Fetch a release from the Hub if not on disk."),
) -> None:
    """Say what an SAE is and whether it fits a model."""
    from interp_af.analysis.sae.load import load_sae, release_info

    if not Path(source).exists() and "/" not in source:
        print(release_info(source, sae_id).describe())
    handle = None
    if model is not None:
        from interp_af.models.handle import load_model

        handle = load_model(model)
    sae = load_sae(source, sae_id=sae_id, site=site, layer=layer, handle=handle,
                   allow_model_mismatch=allow_model_mismatch, download=download)
    print(sae.describe())
    if handle is not None:
        print(f"fits {handle.name}: d_model={handle.d_model}, {handle.n_layers} layers")


@sae_app.command("train")
def train(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model (default: the organism)."),
    layers: str = typer.Option("1,2,3", "--layers", help="Comma-separated layers (residual stream after each)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default for the organism: "
                                       "interp_af/organism/saes)."),
    d_sae: int = typer.Option(1024, "--d-sae", help="Number of features."),
    k: int = typer.Option(16, "--k", help="Active features per token (TopK)."),
    steps: int = typer.Option(1500, "--steps", help="Optimiser steps."),
    batch_tokens: int = typer.Option(512, "--batch-tokens", help="Tokens per step."),
    n_queries: int = typer.Option(64, "--n-queries", help="Training queries (organism: train split) per variant."),
    variants: str = typer.Option("organism,organism-inverted,organism-noinfo,organism-sentence", "--variants",
                                 help="Prompt variants whose prompts (both arms) form the training data."),
    queries: Optional[Path] = typer.Option(None, "--queries", help="Query file (default: organism train split)."),
    backend: str = typer.Option("tl", "--backend"),
    seed: int = typer.Option(0, "--seed"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing SAE folders."),
) -> None:
    """Train TopK SAEs (sae-lens trainer, offline) on the residual stream; saved in sae-lens format."""
    from interp_af.analysis.sae.train import SAETrainConfig, train_saes
    from interp_af.models.handle import load_model
    from interp_af.models.metric import decision_tokens
    from interp_af.setting.queries import load_queries
    from interp_af.setting.twins import make_twins

    organism = model is None or model == "organism"
    if organism:
        from interp_af.organism import organism_path, organism_queries

        organism_path()
        qs = load_queries(queries) if queries else organism_queries("train", n=n_queries, seed=seed)
    else:
        qs = load_queries(queries, limit=n_queries)
    out = out or (ORGANISM_SAES if organism else Path("results/saes"))
    handle = load_model("organism" if organism else model, backend=backend)
    prompts = []
    for v in variants.split(","):
        for t in make_twins(handle.tokenizer, qs, v.strip()):
            prompts += [t.a, t.b]
    cfg = SAETrainConfig(layers=_csv_ints(layers, "--layers"), d_sae=d_sae, k=k, steps=steps,
                         batch_size=batch_tokens, seed=seed)
    for r in train_saes(handle, prompts, out, cfg, dt=decision_tokens(handle.tokenizer), overwrite=overwrite):
        print(f"{r.path}  {r.site}  held-out FVE {r.fve:.3f}  L0 {r.l0:.1f}  dead {r.dead_fraction:.1%}  "
              f"({r.n_train_tokens} training tokens)")


@sae_app.command("run")
def run(
    sae: Optional[List[str]] = typer.Option(None, "--sae", help="SAE folder or release (repeat for several); "
                                            "default: every SAE shipped with the organism."),
    sae_id: Optional[str] = typer.Option(None, "--sae-id", help="SAE id inside a release."),
    model: options.Model = None,
    adapter: options.Adapter = None,
    backend: options.Backend = "tl",
    dtype: options.Dtype = "float32",
    device: options.Device = "cpu",
    variant: options.Variant = None,
    queries: options.Queries = None,
    limit: Optional[int] = typer.Option(None, "--limit", help="Number of queries (organism default: 100)."),
    positions: str = typer.Option("cue,end_user,decision,metric", "--positions",
                                  help="Named positions ('metric' = where the metric is read)."),
    ablate_positions: str = typer.Option("decision,metric", "--ablate-positions"),
    method: str = typer.Option("gxa", "--method", help="gxa (grad x act) or ig (integrated gradients)."),
    steps: int = typer.Option(10, "--steps", help="Integrated-gradients steps."),
    k: int = typer.Option(5, "--k", help="Features ablated (random controls of the same size)."),
    n_random: int = typer.Option(10, "--n-random"),
    mode: str = typer.Option("zero", "--mode", help="zero or mean ablation."),
    allow_model_mismatch: bool = typer.Option(False, "--allow-model-mismatch"),
    batch_size: int = typer.Option(8, "--batch-size"),
    out: Path = typer.Option(Path("results/sae"), "--out"),
) -> None:
    """Quality, differential features, attribution and ablation (with random controls) for each SAE."""
    from interp_af.analysis.sae.load import load_sae, organism_sae_paths
    from interp_af.analysis.sae.study import StudyConfig, run_study

    sources = list(sae or []) or [str(p) for p in organism_sae_paths()]
    handle, prompts, dt = _model_and_prompts(model, backend, adapter, dtype, device, variant, queries, limit)
    saes = [load_sae(s, sae_id=sae_id, handle=handle, allow_model_mismatch=allow_model_mismatch, device=device)
            for s in sources]
    cfg = StudyConfig(positions=tuple(p.strip() for p in positions.split(",")),
                      ablate_positions=tuple(p.strip() for p in ablate_positions.split(",")), method=method,
                      steps=steps, k=k, n_random=n_random, mode=mode, batch_size=batch_size)
    summary = run_study(handle, saes, prompts, dt, out, cfg)
    for site, entry in summary["saes"].items():
        q = entry["quality"]
        print(f"{site}: FVE {q['fve']:.3f}  L0 {q['l0']:.1f}  dead {q['dead_fraction']:.1%}  splice(err) "
              f"{q['splice_err_max_abs']:.1e}  splice(no err) mean|d| {q['splice_noerr_mean_abs']:.3f}")
        for pos, pe in entry["positions"].items():
            if "ablation" in pe:
                a = pe["ablation"]
                print(f"  {pos}: top-attr Jaccard(arms) {pe['top_attr_jaccard']:.2f}; ablate {pe['top_gap_features']}"
                      f": gap {a['gap_baseline']:.3f} -> {a['gap_chosen']:.3f} (delta {a['delta_gap_chosen']:+.3f}; "
                      f"random {a['delta_gap_random_mean']:+.3f} +- {a['delta_gap_random_sd']:.3f}); logit gap delta "
                      f"{a['delta_logit_gap_chosen']:+.3f} vs random {a['delta_logit_gap_random_mean']:+.3f} +- "
                      f"{a['delta_logit_gap_random_sd']:.3f}")
    print(out / "summary.json")
