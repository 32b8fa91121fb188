"""``interp-af sae``: SAE features of the compliance gap.

- ``interp-af sae info SOURCE``: load an SAE (sae-lens folder, sparsify folder, or release + ``--sae-id``) and say
  what it is for; with ``--model``, check that it fits (width, site/layer, model name);
- ``interp-af sae train``: train TopK SAEs on a target's residual stream with sae-lens's trainer, offline;
- ``interp-af sae run``: the study's ``sae`` stage (:func:`interp_af.stages.sae.sae`, options = ``[sae]``):
  quality, differential features, attribution, contexts and the ablation test with random controls.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from interp_af.stages.sae import SaeConfig
from interp_af.targets.config import ModelConfig, SettingConfig

from interp_af.errors import InterpAFError

from ._app import app
from .options import MODEL, parse_ints, with_configs

def _looks_local(name: str) -> bool:
    return name.startswith((".", "/", "~")) or Path(name).expanduser().exists()


sae_app = typer.Typer(help="SAE features: load/check, train, quality, attribution, ablation.", no_args_is_help=True)
app.add_typer(sae_app, name="sae")


@sae_app.command("info")
def info(
    source: str = typer.Argument(..., help="SAE folder (sae-lens or sparsify format) or a sae-lens release name."),
    sae_id: Optional[str] = typer.Option(None, "--sae-id", help="SAE id inside a release."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Check the fit against this model (a target "
                                        "name, folder or Hub id)."),
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
        from interp_af.targets import resolve

        handle = resolve(model).handle
    sae = load_sae(source, sae_id=sae_id, site=site, layer=layer, handle=handle,
                   allow_model_mismatch=allow_model_mismatch, download=download)
    print(sae.describe())
    if handle is not None:
        print(f"fits {handle.name}: d_model={handle.d_model}, {handle.n_layers} layers")


@sae_app.command("train")
@with_configs(model=(ModelConfig, MODEL), setting=SettingConfig)
def train(
    layers: str = typer.Option("1,2,3", "--layers", help="Layers (residual stream after each), e.g. 1,2 or 1-3."),
    out: Path = typer.Option(..., "--out", help="Output folder (one <site>.<layer>/ folder per SAE)."),
    d_sae: int = typer.Option(1024, "--d-sae", min=1, help="Number of features."),
    k: int = typer.Option(16, "--k", min=1, help="Active features per token (TopK)."),
    steps: int = typer.Option(1500, "--steps", min=1, help="Optimiser steps."),
    batch_tokens: int = typer.Option(512, "--batch-tokens", min=1, help="Tokens per step."),
    n_queries: int = typer.Option(64, "--n-queries", min=1, help="Training requests (the target's training set "
                                  "when it has one, else its studied set)."),
    seed: int = typer.Option(0, "--seed"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing SAE folders."),
    model: ModelConfig = None, setting: SettingConfig = None,  # type: ignore[assignment]
) -> None:
    """Train TopK SAEs (sae-lens trainer, offline) on the residual stream of the main variant and its contrasts
    (both arms); saved in sae-lens format."""
    from interp_af.analysis.sae.train import SAETrainConfig, train_saes
    from interp_af.setting.queries import benign_queries, load_queries

    from . import common

    layer_list = parse_ints(layers, "--layers")
    common.check_out(out)
    t = common.target(model, setting)
    common.preflight(t, layers={"--layers": layer_list})
    s = t.setting_config
    if s.queries:
        qs = load_queries(s.queries, limit=n_queries, column=s.column) + (benign_queries() if s.benign else [])
    else:
        qfn = t.target.train_queries or t.target.queries
        qs = qfn(n_queries, s.benign)
    t.use_queries(qs)
    common.claim_out(out, what="sae train")
    common.loading(t)
    prompts = [p for v in t.variants for tw in t.twins(v) for p in (tw.a, tw.b)]
    cfg = SAETrainConfig(layers=layer_list, d_sae=d_sae, k=k, steps=steps,
                         batch_size=batch_tokens, seed=seed)
    for r in train_saes(t.handle, prompts, out, cfg, dt=t.dt, overwrite=overwrite):
        print(f"{r.path}  {r.site}  held-out FVE {r.fve:.3f}  L0 {r.l0:.1f}  dead {r.dead_fraction:.1%}  "
              f"({r.n_train_tokens} training tokens)")


@sae_app.command("run")
@with_configs(model=(ModelConfig, MODEL), setting=SettingConfig, sae=(SaeConfig, {"rename": {"path": "sae"}}))
def run(out: Path = typer.Option(Path("results/sae"), "--out", help="Output folder."),
        model: ModelConfig = None, setting: SettingConfig = None, sae: SaeConfig = None) -> None:  # type: ignore[assignment]
    """Quality, differential features, attribution and ablation (with random controls) for each SAE."""
    from interp_af.stages.sae import sae as run_sae
    from interp_af.stages.sae import report, summarize

    from . import common

    common.check_out(out)
    t = common.target(model, setting)
    if sae.path and _looks_local(sae.path) and not Path(sae.path).expanduser().is_dir():
        raise InterpAFError(f"--sae {sae.path}: SAE folder does not exist; pass a folder in sae-lens or sparsify "
                            "format, or a sae-lens '<release>/<sae id>'")
    if not sae.path and t.target.saes is None:
        raise InterpAFError(f"--sae is not given and target {t.name!r} ships no SAEs; pass --sae with a local SAE "
                            "folder or a sae-lens '<release>/<sae id>' (or train one: interp-af sae train)")
    common.preflight(t)
    common.claim_out(out, what="sae run")
    common.loading(t)
    study = run_sae(t, sae)
    study.save(out)
    figs = common.write_figures(report(study, summarize(study)), out)
    for site, entry in study.summary()["saes"].items():
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
    common.done([out / "summary.json", *figs], t)
