"""One SAE study of the compliance gap, end to end, for one or more SAEs (one per layer/site).

For each SAE, on the studied twins: quality (FVE, L0, dead features, splice with/without the error term);
differential features between arms at the named positions (paired by query); attribution of the metric to
features and the error node at the named positions, per arm, and how much the arms' top features overlap; the
top features' contexts; and the causal test: ablate the ``k`` features that carry the most gap attribution
(``attr(a) - attr(b)``, paired by query) at a position, beside ``n_random`` random sets of ``k`` live features.
Everything is written under ``out_dir/<site>.<layer>/`` (JSON + safetensors + HTML figures) and the headline
numbers into ``out_dir/summary.json``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from interp_af.setting.types import RenderedPrompt

from .attribution import attribute_features
from .context import feature_context
from .features import differential_features, encode_prompts
from .intervene import intervene_features
from .load import LoadedSAE
from .quality import sae_quality


@dataclass(frozen=True)
class StudyConfig:
    positions: tuple[str, ...] = ("cue", "end_user", "decision", "metric")
    ablate_positions: tuple[str, ...] = ("decision", "metric")
    method: str = "gxa"
    steps: int = 10
    k: int = 5                   # features ablated (and random controls of the same size)
    n_random: int = 10
    mode: str = "zero"
    seed: int = 0
    batch_size: int = 8
    top_n: int = 15              # features shown in figures / tables

    def __post_init__(self) -> None:
        from interp_af.checks import nonneg_int, positive_int

        positive_int(self.steps, "steps")
        positive_int(self.k, "k")
        nonneg_int(self.n_random, "n_random", "0 = no random controls")
        positive_int(self.batch_size, "batch_size")
        positive_int(self.top_n, "top_n")


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if hasattr(obj, "item"):
        return obj.item()
    return obj


def run_study(handle: Any, saes: Sequence[LoadedSAE], prompts: Sequence[RenderedPrompt], dt: Any,
              out_dir: str | Path, cfg: StudyConfig = StudyConfig()) -> dict[str, Any]:
    """Run the study for every SAE in ``saes``; returns (and writes) the summary."""
    from interp_af.report.sae import ablation_figure, arm_scatter, attribution_bars, write_figure

    from interp_af import atomic, owned

    out = owned.ensure_dir(out_dir, what="sae study")
    summary: dict[str, Any] = {"config": asdict(cfg), "n_prompts": len(prompts), "saes": {}}
    for sae in saes:
        d = owned.ensure_dir(out / str(sae.site), what="sae study")
        q = sae_quality(handle, sae, prompts, dt, positions=cfg.positions, batch_size=cfg.batch_size)
        q.save(d / "quality.json")
        fa = encode_prompts(handle, sae, prompts, dt, positions=cfg.positions, batch_size=cfg.batch_size)
        diff = differential_features(fa)
        diff.save(d / "differential.json")
        attr = attribute_features(handle, sae, prompts, dt, positions=cfg.positions, method=cfg.method,
                                  steps=cfg.steps, batch_size=cfg.batch_size)
        attr.save(d / "attribution")
        arms = diff.arms
        entry: dict[str, Any] = {"sae": sae.describe(), "quality": asdict(q), "positions": {}}
        picks: dict[str, tuple[dict[str, Any], list[int], list[int], list[int]]] = {}
        for pos in cfg.positions:
            cmp = attr.compare_arms(pos, arms, k=cfg.k)
            paired = cmp["paired"]
            gap_feats = paired[paired["diff"] > 0].head(cfg.k)["feature"].astype(int).tolist()
            top_diff = diff.top(pos, cfg.top_n)["feature"].astype(int).tolist()
            show = sorted(set(cmp["top_a"]) | set(cmp["top_b"]) | set(top_diff[: cfg.k]) | set(gap_feats))
            picks[pos] = (cmp, gap_feats, top_diff, show)
        # one pass over the prompts for the contexts of every feature shown at any position
        ctx = feature_context(handle, sae, prompts, sorted({f for p in picks.values() for f in p[3]}), dt=dt, k=3,
                              batch_size=cfg.batch_size)
        atomic.write_text(d / "context.csv", ctx.to_frame().to_csv(index=False))
        for pos, (cmp, gap_feats, top_diff, show) in picks.items():
            write_figure(attribution_bars(attr, pos, k=cfg.top_n, arms=arms, contexts=ctx), d / f"attribution_{pos}")
            write_figure(arm_scatter(fa, pos, arms=arms, highlight=show, contexts=ctx), d / f"scatter_{pos}")
            pos_entry: dict[str, Any] = {
                "top_attr_a": cmp["top_a"], "top_attr_b": cmp["top_b"], "top_attr_jaccard": cmp["jaccard"],
                "top_gap_features": gap_feats, "top_differential": top_diff[: cfg.k],
                "error_attr_a": float(attr.summary(pos, arms[0]).query("feature == -1")["attr"].iloc[0]),
                "error_attr_b": float(attr.summary(pos, arms[1]).query("feature == -1")["attr"].iloc[0]),
                "contexts": {int(f): ctx.short_context(int(f), 60) for f in show},
            }
            if pos in cfg.ablate_positions and gap_feats:
                iv = intervene_features(handle, sae, prompts, dt, gap_feats, mode=cfg.mode, positions=(pos,),
                                        n_random=cfg.n_random, seed=cfg.seed, arms=arms, batch_size=cfg.batch_size)
                iv.save(d / f"ablation_{pos}.json")
                write_figure(ablation_figure(iv), d / f"ablation_{pos}")
                pos_entry["ablation"] = {**iv.summary(), "baseline": asdict(iv.baseline), "chosen": asdict(iv.chosen)}
            entry["positions"][pos] = pos_entry
        summary["saes"][str(sae.site)] = entry
    atomic.write_json(out / "summary.json", _json_safe(summary))
    return summary
