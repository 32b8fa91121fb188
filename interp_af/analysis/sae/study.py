"""One SAE study of the compliance gap, end to end, for one or more SAEs (one per layer/site).

For each SAE, on the studied twins: quality (FVE, L0, dead features, splice with/without the error term);
differential features between arms at the named positions (paired by query); attribution of the metric to
features and the error node at the named positions, per arm, and how much the arms' top features overlap; the
top features' contexts; and the causal test: ablate the ``k`` features that carry the most gap attribution
(``attr(a) - attr(b)``, paired by query) at a position, beside ``n_random`` random sets of ``k`` live features.

:func:`run_study` returns an :class:`SAEStudy` (every intermediate result object, per SAE); ``save`` writes it
under ``out_dir/<site>.<layer>/`` as JSON + safetensors + CSV, plus ``out_dir/summary.json`` (the headline
numbers). Figures are drawn from these objects by the report layer, never here.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from tqdm import tqdm

from interp_af.setting.types import RenderedPrompt

from .attribution import FeatureAttribution, attribute_features
from .context import FeatureContext, feature_context
from .features import DifferentialFeatures, FeatureActs, differential_features, encode_prompts
from .intervene import FeatureIntervention, intervene_features
from .load import LoadedSAE, as_sae
from .quality import SAEQuality, sae_quality


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


@dataclass(frozen=True)
class SAEEntry:
    """Everything measured for one SAE. ``picks[position]``: the features chosen there (top attribution per arm
    and their Jaccard overlap, the top gap features, the top differential ones, and those shown in figures)."""

    sae: str
    site: str
    quality: SAEQuality
    acts: FeatureActs
    differential: DifferentialFeatures
    attribution: FeatureAttribution
    contexts: FeatureContext
    picks: Mapping[str, Mapping[str, Any]]
    ablations: Mapping[str, FeatureIntervention] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The per-SAE entry of ``summary.json`` (quality, and per position the picks and the ablation test)."""
        out: dict[str, Any] = {"sae": self.sae, "quality": asdict(self.quality), "positions": {}}
        arms = self.differential.arms
        for pos, pick in self.picks.items():
            entry = {k: pick[k] for k in ("top_attr_a", "top_attr_b", "top_attr_jaccard", "top_gap_features",
                                          "top_differential")}
            entry["error_attr_a"] = float(self.attribution.summary(pos, arms[0]).query("feature == -1")["attr"].iloc[0])
            entry["error_attr_b"] = float(self.attribution.summary(pos, arms[1]).query("feature == -1")["attr"].iloc[0])
            entry["contexts"] = {int(f): self.contexts.short_context(int(f), 60) for f in pick["show"]}
            if pos in self.ablations:
                iv = self.ablations[pos]
                entry["ablation"] = {**iv.summary(), "baseline": asdict(iv.baseline), "chosen": asdict(iv.chosen)}
            out["positions"][pos] = entry
        return out

    def save(self, d: Path) -> None:
        from interp_af import atomic, owned

        owned.ensure_dir(d, what="sae study")
        self.quality.save(d / "quality.json")
        self.acts.save(d / "acts")
        self.differential.save(d / "differential.json")
        self.attribution.save(d / "attribution")
        atomic.write_text(d / "context.csv", self.contexts.to_frame().to_csv(index=False))
        for pos, iv in self.ablations.items():
            iv.save(d / f"ablation_{pos}.json")
        atomic.write_json(d / "entry.json", _json_safe({"sae": self.sae, "site": self.site, "picks": self.picks}),
                          indent=1)

    @classmethod
    def load(cls, d: Path) -> "SAEEntry":
        import pandas as pd

        meta = json.loads((d / "entry.json").read_text())
        picks = {pos: {**p, "show": [int(f) for f in p["show"]]} for pos, p in meta["picks"].items()}
        try:
            table = pd.read_csv(d / "context.csv", keep_default_na=False)
        except pd.errors.EmptyDataError:   # no feature was shown: an empty table
            table = pd.DataFrame()
        ablations = {p.stem.removeprefix("ablation_"): FeatureIntervention.load(p) for p in sorted(d.glob("ablation_*.json"))}
        return cls(meta["sae"], meta["site"], SAEQuality.load(d / "quality.json"), FeatureActs.load(d / "acts"),
                   DifferentialFeatures.load(d / "differential.json"), FeatureAttribution.load(d / "attribution"),
                   FeatureContext(meta["sae"], table), picks, ablations)


@dataclass(frozen=True)
class SAEStudy:
    config: StudyConfig
    n_prompts: int
    entries: Mapping[str, SAEEntry]
    fit_notes: tuple[str, ...] = ()   # what the reader must know to judge the fit (dequantised weights, provenance)

    def summary(self) -> dict[str, Any]:
        return _json_safe({"config": asdict(self.config), "n_prompts": self.n_prompts,
                           "saes": {site: e.summary() for site, e in self.entries.items()},
                           "fit_notes": list(self.fit_notes)})

    def save(self, out_dir: str | Path) -> Path:
        from interp_af import atomic, owned

        out = owned.ensure_dir(out_dir, what="sae study")
        for site, entry in self.entries.items():
            entry.save(out / site)
        atomic.write_json(out / "summary.json", self.summary())
        return out

    @classmethod
    def load(cls, out_dir: str | Path) -> "SAEStudy":
        out = Path(out_dir)
        s = json.loads((out / "summary.json").read_text())
        cfg = StudyConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in s["config"].items()})
        return cls(cfg, s["n_prompts"], {site: SAEEntry.load(out / site) for site in s["saes"]},
                   tuple(s.get("fit_notes", ())))


def run_study(handle: Any, saes: Sequence[Any], prompts: Sequence[RenderedPrompt], dt: Any,
              cfg: StudyConfig = StudyConfig(), *, progress: bool = False) -> SAEStudy:
    """Run the study for every SAE in ``saes`` (:class:`LoadedSAE` s or sae-lens SAE objects); ``progress``: a
    bar per pass over the prompts (quality, encoding, attribution, contexts, ablation) on stderr."""
    from interp_af.models.wrap import as_handle

    handle = as_handle(handle)
    entries: dict[str, SAEEntry] = {}
    # one bar over the study's passes (five per SAE), above each pass's own bar over batches
    bar = tqdm(total=5 * len(saes), desc="sae", unit="pass", disable=not progress)

    def step(what: str) -> None:
        bar.update()
        bar.set_postfix_str(f"{sae.site}: {what}", refresh=False)

    for raw in saes:
        sae = as_sae(raw)
        bar.set_postfix_str(f"{sae.site}: quality", refresh=False)
        q = sae_quality(handle, sae, prompts, dt, positions=cfg.positions, batch_size=cfg.batch_size, progress=progress)
        fa = encode_prompts(handle, sae, prompts, dt, positions=cfg.positions, batch_size=cfg.batch_size,
                            progress=progress)
        step("features")
        diff = differential_features(fa)
        step("attribution")
        attr = attribute_features(handle, sae, prompts, dt, positions=cfg.positions, method=cfg.method,
                                  steps=cfg.steps, batch_size=cfg.batch_size, progress=progress)
        arms = diff.arms
        picks: dict[str, dict[str, Any]] = {}
        for pos in cfg.positions:
            cmp = attr.compare_arms(pos, arms, k=cfg.k)
            paired = cmp["paired"]
            gap_feats = paired[paired["diff"] > 0].head(cfg.k)["feature"].astype(int).tolist()
            top_diff = diff.top(pos, cfg.top_n)["feature"].astype(int).tolist()
            show = sorted(set(cmp["top_a"]) | set(cmp["top_b"]) | set(top_diff[: cfg.k]) | set(gap_feats))
            picks[pos] = {"top_attr_a": cmp["top_a"], "top_attr_b": cmp["top_b"], "top_attr_jaccard": cmp["jaccard"],
                          "top_gap_features": gap_feats, "top_differential": top_diff[: cfg.k], "show": show}
        step("top contexts")
        # one pass over the prompts for the contexts of every feature shown at any position
        ctx = feature_context(handle, sae, prompts, sorted({f for p in picks.values() for f in p["show"]}), dt=dt, k=3,
                              batch_size=cfg.batch_size, progress=progress)
        step("ablation")
        ablations = {}
        for pos, pick in picks.items():
            if pos in cfg.ablate_positions and pick["top_gap_features"]:
                ablations[pos] = intervene_features(handle, sae, prompts, dt, pick["top_gap_features"], mode=cfg.mode,
                                                    positions=(pos,), n_random=cfg.n_random, seed=cfg.seed,
                                                    arms=arms, batch_size=cfg.batch_size, progress=progress)
        entries[str(sae.site)] = SAEEntry(sae.describe(), str(sae.site), q, fa, diff, attr, ctx, picks, ablations)
        bar.update()
    bar.close()
    return SAEStudy(cfg, len(prompts), entries)
