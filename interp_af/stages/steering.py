"""Stage ``steering``: does moving the representation move the gap?

The direction is the free-minus-paid mean difference of the residual stream (difference-of-means directions
are the causally implicated ones, Marks & Tegmark), or a vector from a file. It is added to the second
(untrained) arm's prompts and the fraction of the gap closed is read against the flipped direction and
norm-matched random directions (:mod:`interp_af.analysis.steering`).

The layer is *chosen on held-apart twins*: the first quarter of the aligned harmful twins (at least 4) is the
selection split, on which every candidate layer is tried at alpha 1; the headline is measured on the other
twins at the chosen layer, so it is not picked on the data it is reported on. Candidates default to the
middle half of depth (next to the unembedding any direction, random ones included, moves the logits).
``select = false`` skips the choice and steers every listed layer at once on all twins.

API: :func:`steer` (``interp_af.steer``); CLI: ``interp-af steer``; TOML: ``[steering]``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interp_af.analysis.vocab import STEER_OPS as OPS
from interp_af.analysis.vocab import STEER_SITES
from interp_af.options import option, validate
from interp_af.report.page import Contribution, FigureBlock, Finding, Section
from interp_af.stages.base import StageContext, StageSpec, register_stage
from interp_af.stages.util import rounded, write_json


@dataclass(frozen=True)
class SteeringConfig:
    """Which direction, where it is added, and with which controls."""

    layers: tuple[int, ...] = option((), "Candidate layers (() = the middle half of depth); with select, one is "
                                         "chosen on held-apart twins.", min=0)
    select: bool = option(True, "Choose the best single candidate layer on a held-apart split (off: steer every "
                                "listed layer at once).")
    alphas: tuple[float, ...] = option((-2.0, -1.0, -0.5, 0.5, 1.0, 2.0), "Multipliers of the direction (1 = one "
                                       "average free-minus-paid difference); the headline is read at 1.",
                                       min_items=1)
    n_random: int = option(20, "Norm-matched random control directions (run at the reported alpha; the effect is "
                               "read against their distribution).", min=0)
    site: str = option("resid_post", "Site steered (and where the mean difference is read).", choices=STEER_SITES)
    positions: tuple[str, ...] = option(("all",), "Positions edited: all, from_cue, metric, or named positions.",
                                        min_items=1)
    source_position: str = option("metric", "Position of the mean difference: metric (where the metric is read), "
                                            "decision, cue, end_user, ...")
    op: str = option("add", "add (steer) or project_out (ablate the direction).", choices=OPS)
    direction_file: str = option("", "A vector to steer along (.safetensors / .npy / .json) instead of the mean "
                                     "difference.")
    generate: int = option(0, "Also decode N tokens (steered at the largest alpha) for the first few prompts.",
                           min=0)
    batch_size: int = option(32, "Rows per forward pass.", min=1)
    n_boot: int = option(1000, "Query-bootstrap resamples for the intervals.", min=1)
    seed: int = option(0, "Seed of the random control directions.")

    def __post_init__(self) -> None:
        from interp_af.errors import InterpAFError

        validate(self)
        if self.op == "add" and not any(a != 0.0 for a in self.alphas):
            raise InterpAFError(f"SteeringConfig.alphas = {self.alphas}: give at least one non-zero multiplier")


@dataclass(frozen=True)
class SteeringSummary:
    """The headline of a steering run, read at ``alpha`` steering the untrained arm: the fraction of the gap
    closed, beside the distribution of ``n_random`` norm-matched random directions (median, 95th percentile
    of the magnitude, the direction's percentile among them), the flipped direction on both arms, and the noise
    floor in logits (:mod:`interp_af.analysis.steering_controls`)."""

    layer: int
    selection_scores: dict[str, float]
    skipped: tuple[str, ...]
    alpha: float
    n_select: int
    n_report: int
    gap_closed: float
    gap_closed_ci: tuple[float, float] | None
    n_random: int
    random_median: float | None
    random_abs_p95: float | None
    percentile: float | None
    flipped_gap_closed: float | None
    flipped_gap_closed_other_arm: float | None
    gap_logit: float | None
    noise_floor_logit: float | None
    above_noise_floor: bool | None
    cue_cosine: float | None
    layers: tuple[int, ...] = ()
    source: str = ""


@dataclass(frozen=True)
class SteerStudy:
    """The steering run at the chosen layer(s), how the layer was chosen, and where the direction came from."""

    result: Any                                    # interp_af.analysis.steering.SteerResult
    layers: tuple[int, ...]
    selection_scores: dict[int, float] = field(default_factory=dict)
    skipped: tuple[str, ...] = ()
    n_select: int = 0
    source: str = ""
    generations: tuple[str, ...] = ()

    @property
    def unit(self) -> float:
        """The alpha the headline is read at: 1 when steered at 1, else the largest."""
        alphas = self.result.alphas
        return 1.0 if 1.0 in alphas else max(alphas)

    def closed_at(self, control: str) -> float:
        r = self.result
        return float(r.closed(arm=1)[r.controls.index(control), r.alphas.index(self.unit)])

    def save(self, out: str | Path) -> Path:
        out = Path(out)
        self.result.save(out)
        self.result.to_frame().to_csv(out / "steer.csv", index=False)
        write_json(out / "steer_study.json", {
            "layers": list(self.layers), "selection_scores": {str(k): v for k, v in self.selection_scores.items()},
            "skipped": list(self.skipped), "n_select": self.n_select, "source": self.source,
            "generations": list(self.generations)})
        return out

    @classmethod
    def load(cls, out: str | Path) -> "SteerStudy":
        from interp_af.analysis.steering import SteerResult

        out = Path(out)
        d = json.loads((out / "steer_study.json").read_text())
        return cls(SteerResult.load(out), tuple(d["layers"]), {int(k): v for k, v in d["selection_scores"].items()},
                   tuple(d["skipped"]), d["n_select"], d["source"], tuple(d.get("generations", ())))


def load_direction(path: str | Path) -> Any:
    """A vector from ``.safetensors`` (key 'direction' or the only 1-D tensor), ``.npy`` or ``.json``."""
    import torch

    from interp_af.errors import InterpAFError

    path = Path(path)
    if not path.is_file():
        raise InterpAFError(f"direction file {path} does not exist; pass a .safetensors, .npy or .json vector")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        t = load_file(str(path))
        if "direction" in t:
            return t["direction"].flatten()
        vecs = [v for v in t.values() if v.dim() == 1 or (v.dim() == 2 and 1 in v.shape)]
        if len(vecs) != 1:
            raise InterpAFError(f"direction file {path} holds {sorted(t)}; name the vector 'direction'")
        return vecs[0].flatten()
    if path.suffix == ".npy":
        import numpy as np

        return torch.from_numpy(np.load(path, allow_pickle=False)).flatten().float()
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        return torch.tensor(data["direction"] if isinstance(data, dict) else data, dtype=torch.float32)
    raise InterpAFError(f"direction file {path}: unsupported type; use .safetensors, .npy or .json")


def _positions(spec: tuple[str, ...]) -> Any:
    return spec[0] if len(spec) == 1 and spec[0] in ("all", "from_cue", "metric") else list(spec)


def steer(target: Any, config: SteeringConfig | None = None, *, progress: bool = True) -> SteerStudy:
    """Steer ``target``'s untrained-arm prompts along the direction; see the module docstring."""
    import torch
    from tqdm import tqdm

    from interp_af.analysis.steering import generate_steered, mean_difference
    from interp_af.analysis.steering import steer as run_steer
    from interp_af.errors import InterpAFError
    from interp_af.targets import ResolvedTarget, resolve

    t = target if isinstance(target, ResolvedTarget) else resolve(target)
    s = config or SteeringConfig()
    h = t.handle
    tw = t.patch_twins(0)
    n = h.n_layers
    layers = s.layers or tuple(range(n // 4, max(n // 4 + 1, (3 * n) // 4)))
    bad = [L for L in layers if not 0 <= L < n]
    if bad:
        raise InterpAFError(f"steering layers {bad} do not exist; the model has layers 0..{n - 1}")
    alphas = tuple(a for a in s.alphas if a != 0.0)
    pos = _positions(s.positions)
    fixed = load_direction(s.direction_file) if s.direction_file else None
    cut = max(4, len(tw) // 4)
    select, report = (tw[:cut], tw[cut:]) if s.select else (tw, [])

    def direction(L: int) -> Any:
        if fixed is not None:
            return fixed
        return mean_difference(h, select, layer=L, site=s.site, position=s.source_position)

    common = dict(op=s.op, site=s.site, positions=pos, batch_size=s.batch_size, n_boot=s.n_boot, seed=s.seed)
    scores: dict[int, float] = {}
    skipped: list[str] = []
    # one bar over the stage: each candidate layer on the selection split, then the reported sweep (which
    # draws its own bar over batches below it)
    bar = tqdm(total=(len(layers) if s.select else 0) + 1, desc="steering", unit="step", disable=not progress)
    if s.select:
        unit = 1.0 if 1.0 in alphas else max(alphas, default=1.0)
        for L in layers:
            bar.set_postfix_str(f"choose layer: {L}", refresh=False)
            bar.update()
            d = direction(L)
            if not bool(torch.isfinite(d).all()) or float(d.norm()) == 0.0:
                # the arms do not differ here (e.g. the cue lies outside a sliding-attention window)
                skipped.append(f"layer {L}: the free-minus-paid mean difference is zero")
                continue
            res = run_steer(h, select, d, layers=(L,), alphas=(unit,), n_random=0, flipped=False, progress=False,
                            **common)
            r = res.closed(arm=1)
            scores[L] = float(r[0, 0])
        if not scores:
            raise InterpAFError(f"steering: the arms' activations do not differ at any of layers {list(layers)}; "
                                "check the twins differ at the cue (interp-af prompts) or set [steering] layers")
        chosen: tuple[int, ...] = (max(scores, key=lambda L: scores[L]),)
    else:
        chosen = tuple(layers)
    d = direction(chosen[0])
    bar.set_postfix_str(f"sweep at layer {chosen[0]}", refresh=False)
    res = run_steer(h, report or select, d, layers=chosen, alphas=alphas, n_random=s.n_random, progress=progress,
                    **common)
    bar.update()
    bar.close()
    source = s.direction_file or f"mean difference {s.site}.{chosen[0]} @ {s.source_position}"
    gens: tuple[str, ...] = ()
    if s.generate:
        alpha = max(res.alphas, key=abs)
        gens = tuple(generate_steered(h, [x.b for x in (report or select)[:4]], d, layers=chosen, alpha=alpha,
                                      op=s.op, site=s.site, positions=pos, max_new_tokens=s.generate))
    return SteerStudy(res, chosen, scores, tuple(skipped), len(select) if s.select else 0, source, gens)


def summarize(study: SteerStudy) -> SteeringSummary:
    r = study.result
    c = r.controls_summary(arm=1, alpha=study.unit) if any(x.startswith("random") for x in r.controls) else None
    closed = study.closed_at(r.controls[0])
    return rounded(SteeringSummary(
        layer=study.layers[0], selection_scores={str(k): v for k, v in study.selection_scores.items()},
        skipped=study.skipped, alpha=study.unit, n_select=study.n_select, n_report=len(r.query_ids),
        gap_closed=closed, gap_closed_ci=(c.closed_lo, c.closed_hi) if c else None,
        n_random=c.n_random if c else 0, random_median=c.random_median if c else None,
        random_abs_p95=c.random_abs_p95 if c else None, percentile=c.percentile if c else None,
        flipped_gap_closed=c.flipped_closed if c else (study.closed_at("flipped") if "flipped" in r.controls
                                                         else None),
        flipped_gap_closed_other_arm=c.flipped_closed_other_arm if c else None,
        gap_logit=c.gap_logit if c else None, noise_floor_logit=c.noise_floor_logit if c else None,
        above_noise_floor=c.above_noise_floor if c else None,
        cue_cosine=r.cue_cosine, layers=study.layers, source=study.source))


CAPTIONS = {
    "steering": ("Dose-response: fraction of the gap closed when adding alpha x the free-minus-paid mean difference to "
                 "paid prompts, vs the flipped direction and norm-matched random directions.",
                 "Causal evidence needs the direction to close the gap far beyond random directions, with the "
                 "flipped direction pushing the other way."),
}


def report(study: SteerStudy, summary: SteeringSummary) -> Contribution:
    from interp_af.report.steering import dose_response

    figs = (FigureBlock.build("steering", "Steering", lambda: dose_response(study.result), what=CAPTIONS["steering"][0],
                              evidence=CAPTIONS["steering"][1], source="steering/steer.json"),)
    findings = [Finding("does moving the representation move the gap?",
                        f"fraction of the gap closed at alpha {summary.alpha:g}, layer {summary.layer}",
                        summary.gap_closed, None, ".0%", "steering")]
    if summary.random_abs_p95 is not None:
        findings.append(Finding("do random directions do as much?", f"95th percentile of |fraction closed| over "
                                f"{summary.n_random} norm-matched random directions (median "
                                f"{summary.random_median:+.0%}); the direction's percentile among them: "
                                f"{summary.percentile:.0f}", summary.random_abs_p95, None, ".0%", "steering"))
        findings.append(Finding("is the logit gap above what random directions move?", "unsteered logit gap vs the "
                                f"noise floor ({summary.noise_floor_logit:.3f})", summary.gap_logit, None, "+.3f",
                                "steering"))
    if summary.flipped_gap_closed is not None:
        findings.append(Finding("does the flipped direction push the other way?", "fraction closed, flipped",
                                summary.flipped_gap_closed, None, ".0%", "steering"))
    return Contribution((Section("steering", "Steering", figs, notes=summary.skipped),), tuple(findings))


def _run(ctx: StageContext) -> SteerStudy:
    study = steer(ctx.target, ctx.config, progress=ctx.progress)
    study.save(ctx.out)
    return study


STAGE = register_stage(StageSpec(
    name="steering", config=SteeringConfig, run=_run, load=SteerStudy.load, summarize=summarize,
    summary_type=SteeringSummary, report=report,
    description="mean-difference steering with the layer chosen on held-apart twins, vs random and flipped"))
