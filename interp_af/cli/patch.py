"""``interp-af patch`` and ``interp-af steer``: causal tests of where the compliance gap flows.

``patch`` is the study's ``patching`` stage (:func:`interp_af.stages.patching.patch`): exact activation
patching between the twins of each query (denoising and/or noising) on the chosen sites, attribution patching
(AtP, integrated gradients) validated against exact patching on the top cells, with heatmaps. ``steer`` is the
``steering`` stage (:func:`interp_af.stages.steering.steer`): the mean difference (or a vector from a file)
added to the untrained arm's prompts, the layer chosen on held-apart twins, against flipped and norm-matched
random directions. Options are the ``[patching]`` / ``[steering]`` tables of a study TOML.
"""

from __future__ import annotations

from pathlib import Path

import typer

from interp_af.stages.patching import PatchingConfig
from interp_af.stages.steering import SteeringConfig
from interp_af.targets.config import ModelConfig, SettingConfig

from ._app import app
from .options import MODEL, with_configs


@app.command()
@with_configs(model=(ModelConfig, MODEL), setting=SettingConfig, patching=PatchingConfig)
def patch(out: Path = typer.Option(Path("results/patch"), "--out", help="Output folder."),
          model: ModelConfig = None, setting: SettingConfig = None,  # type: ignore[assignment]
          patching: PatchingConfig = None) -> None:  # type: ignore[assignment]
    """Exact activation patching free <-> paid and attribution patching checked against it, with heatmaps."""
    from interp_af.stages.patching import patch as run_patch
    from interp_af.stages.patching import report, summarize

    from . import common

    common.check_out(out)
    t = common.target(model, setting)
    common.preflight(t, layers={"--layers": patching.layers}, heads={"--heads": patching.heads})
    common.claim_out(out, what="patch")
    common.loading(t)
    study = run_patch(t, patching)
    study.save(out)
    summary = summarize(study)
    figs = common.write_figures(report(study, summary), out)
    for key, c in summary.top.items():
        head = f".h{c.head}" if c.head is not None else ""
        common.console.print(f"{key}: largest effect {c.effect:+.3f} [{c.ci[0]:+.3f}, {c.ci[1]:+.3f}] at "
                             f"{c.site}.{c.layer}{head} @ {c.column}", highlight=False, markup=False)
    for m, a in summary.attribution.items():
        common.console.print(f"{m}: Spearman vs exact (top {patching.validate_k}) " +
                             ", ".join(f"{s} {v:.2f}" for s, v in a.spearman.items()), highlight=False)
    common.done([out / "patch_study.json", *figs], t)


@app.command()
@with_configs(model=(ModelConfig, MODEL), setting=SettingConfig, steering=SteeringConfig)
def steer(out: Path = typer.Option(Path("results/steer"), "--out", help="Output folder."),
          model: ModelConfig = None, setting: SettingConfig = None,  # type: ignore[assignment]
          steering: SteeringConfig = None) -> None:  # type: ignore[assignment]
    """Steer or ablate along a direction: dose-response of compliance per arm and gap closed, with controls."""
    from interp_af.stages.steering import report, summarize
    from interp_af.stages.steering import steer as run_steer

    from . import common

    from interp_af.targets.preflight import check_file

    common.check_out(out)
    t = common.target(model, setting)
    if steering.direction_file:
        check_file(steering.direction_file, "--direction-file", "direction file", "a .safetensors, .npy or .json vector")
    common.preflight(t, layers={"--layers": steering.layers})
    common.claim_out(out, what="steer")
    common.loading(t)
    study = run_steer(t, steering)
    study.save(out)
    s = summarize(study)
    figs = common.write_figures(report(study, s), out)
    chosen = f"layer {s.layer} (chosen on {s.n_select} held-apart twins)" if steering.select else f"layers {list(s.layers)}"
    rnd = (f"{s.n_random} random directions: median {s.random_median:+.0%}, 95th percentile of |closed| "
           f"{s.random_abs_p95:.0%}, the direction at percentile {s.percentile:.0f}" if s.n_random else "no random "
           "controls")
    common.console.print(f"{s.source} at {chosen}: closes {s.gap_closed:.0%} of the gap at alpha {s.alpha:g} on "
                         f"{s.n_report} twins; {rnd}; flipped {s.flipped_gap_closed}; cue-embedding cosine "
                         f"{s.cue_cosine}", highlight=False, markup=False)
    for g in study.generations:
        common.console.print(repr(g), highlight=False, markup=False)
    common.done([out / "steer.json", *figs], t)
