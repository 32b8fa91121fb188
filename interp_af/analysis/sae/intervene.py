"""Interventions on SAE features: ablate (zero or mean) or steer a set of features, and measure compliance per arm
and the compliance gap, against random sets of as many features.

An edit changes the chosen features' activations ``f_S -> f'_S`` and adds the difference of the reconstructions,
``decode(f') - decode(f)``, to the activation, so the SAE's error term (and every other feature) stays as it was:
only the chosen features move. Edits apply at named positions (default: the decision) or at every position
("all"; BOS left alone). The metric is the logit difference at the decision; compliance of a prompt is its
two-way probability ``sigmoid(logit diff)``, averaged per arm; the gap is arm a minus arm b with a bootstrap
interval over queries (pairs kept).

Controls: ``n_random`` sets of the same size drawn (seeded) from the features that fire at the edited positions
on these prompts, excluding the chosen ones; the effect of the chosen set is only meaningful beside them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from tqdm import tqdm

from interp_af.models.wrap import as_handle
from interp_af.analysis.sae.load import as_sae
from interp_af.errors import InterpAFError
from interp_af.models.interventions import Intervention
from interp_af.setting.types import RenderedPrompt

from . import _run
from .load import LoadedSAE

MODES = ("zero", "mean", "steer")


@dataclass(frozen=True)
class Condition:
    """Compliance per arm and the gap under one edit (``features`` empty = no edit)."""

    label: str
    features: tuple[int, ...]
    compliance_a: float
    compliance_b: float
    gap: float
    gap_lo: float
    gap_hi: float
    logit_diff_a: float
    logit_diff_b: float

    @property
    def logit_gap(self) -> float:
        """The gap in logit-difference units (linear, unlike probabilities, which saturate)."""
        return self.logit_diff_a - self.logit_diff_b


@dataclass(frozen=True)
class FeatureIntervention:
    """Baseline, the chosen set, and the random controls. ``delta_gap`` = gap(edited) - gap(baseline), in
    compliance (probability) units; :meth:`summary` also gives the same in logit-difference units."""

    sae: str
    site: str
    mode: str
    alpha: float
    positions: tuple[str, ...]
    arms: tuple[str, str]
    baseline: Condition
    chosen: Condition
    random: tuple[Condition, ...] = field(default_factory=tuple)

    @property
    def delta_gap(self) -> float:
        return self.chosen.gap - self.baseline.gap

    @property
    def random_delta_gaps(self) -> np.ndarray:
        return np.array([c.gap - self.baseline.gap for c in self.random])

    def summary(self) -> dict[str, float]:
        """The headline numbers: gap change of the chosen set vs the random sets (mean, sd, and the fraction of
        random sets that move the gap at least as much in absolute value)."""
        r = self.random_delta_gaps
        rl = np.array([c.logit_gap - self.baseline.logit_gap for c in self.random])
        dl = self.chosen.logit_gap - self.baseline.logit_gap
        logit = {"logit_gap_baseline": self.baseline.logit_gap, "delta_logit_gap_chosen": dl,
                 "delta_logit_gap_random_mean": float(rl.mean()) if len(rl) else float("nan"),
                 "delta_logit_gap_random_sd": float(rl.std(ddof=1)) if len(rl) > 1 else float("nan"),
                 "delta_logit_gap_random_max_abs": float(np.abs(rl).max()) if len(rl) else float("nan")}
        return {**logit, "gap_baseline": self.baseline.gap, "gap_chosen": self.chosen.gap, "delta_gap_chosen": self.delta_gap,
                "delta_gap_random_mean": float(r.mean()) if len(r) else float("nan"),
                "delta_gap_random_sd": float(r.std(ddof=1)) if len(r) > 1 else float("nan"),
                "delta_gap_random_max_abs": float(np.abs(r).max()) if len(r) else float("nan"),
                "frac_random_at_least_as_large": float((np.abs(r) >= abs(self.delta_gap)).mean()) if len(r)
                else float("nan"), "n_random": len(r)}

    def to_frame(self) -> pd.DataFrame:
        rows = [asdict(c) for c in (self.baseline, self.chosen, *self.random)]
        df = pd.DataFrame(rows)
        df["delta_gap"] = df["gap"] - self.baseline.gap
        df["logit_gap"] = df["logit_diff_a"] - df["logit_diff_b"]
        df["delta_logit_gap"] = df["logit_gap"] - self.baseline.logit_gap
        df["features"] = df["features"].map(lambda f: ",".join(map(str, f)))
        return df

    def save(self, path: str | Path) -> Path:
        from interp_af import atomic, owned

        path = Path(path)
        owned.ensure_dir(path.parent, what="sae intervention")
        return atomic.write_json(path, asdict(self), indent=1)

    @classmethod
    def load(cls, path: str | Path) -> "FeatureIntervention":
        d = json.loads(Path(path).read_text())
        conds = {k: Condition(**{**d[k], "features": tuple(d[k]["features"])}) for k in ("baseline", "chosen")}
        rand = tuple(Condition(**{**c, "features": tuple(c["features"])}) for c in d["random"])
        return cls(d["sae"], d["site"], d["mode"], d["alpha"], tuple(d["positions"]), tuple(d["arms"]),
                   conds["baseline"], conds["chosen"], rand)


def _condition(label: str, feats: Sequence[int], ld: np.ndarray, prompts: Sequence[RenderedPrompt],
               arms: tuple[str, str]) -> Condition:
    arm = np.array([p.arm for p in prompts])
    prob = 1 / (1 + np.exp(-ld))
    gap, lo, hi = _run.paired_gap(prob, arm, [p.query_id for p in prompts], arms)
    return Condition(label, tuple(int(f) for f in feats), float(prob[arm == arms[0]].mean()),
                     float(prob[arm == arms[1]].mean()), gap, lo, hi, float(ld[arm == arms[0]].mean()),
                     float(ld[arm == arms[1]].mean()))


def _edit(f: Tensor, feats: Tensor, mode: str, alpha: float, mean: Tensor | None) -> Tensor:
    new = f.clone()
    if mode == "zero":
        new[..., feats] = 0
    elif mode == "mean":
        new[..., feats] = mean[feats].to(f)
    else:
        new[..., feats] = f[..., feats] + alpha
    return new


@torch.no_grad()
def _mean_acts(handle: Any, sae: LoadedSAE, prompts: Sequence[RenderedPrompt], dt: Any, names: Sequence[str],
               all_pos: bool, batch_size: int, skip_first: int) -> Tensor:
    """Mean feature activation over the prompts at the edited positions (every token for "all")."""
    key, total, n = sae.site, torch.zeros(sae.d_sae), 0
    for pb in _run.batches(handle, prompts, dt, names, batch_size):
        if all_pos:
            out = handle.forward(pb.batch, capture=(key,), stop_at_layer=key.layer + 1)
            xs = [x[0] for x in _run.gather_rows(out.acts[key], pb.batch, _run.row_spans(pb.batch, skip_first))]
            x = torch.cat(xs)
        else:
            out = handle.forward(pb.batch, capture=(key,), capture_positions=pb.positions, stop_at_layer=key.layer + 1)
            x = out.acts[key].reshape(-1, sae.d_in)
        f = sae.encode(x).cpu()
        total += f.sum(0)
        n += f.shape[0]
    return total / max(n, 1)


@torch.no_grad()
def intervene_features(handle: Any, sae: LoadedSAE, prompts: Sequence[RenderedPrompt], dt: Any,
                       features: Sequence[int], *, mode: str = "zero", alpha: float = 0.0,
                       positions: Sequence[str] | str = ("decision",), n_random: int = 10, seed: int = 0,
                       arms: tuple[str, str] | None = None, batch_size: int = 8, skip_first: int = 1,
                       random_pool: Sequence[int] | None = None, progress: bool = True) -> FeatureIntervention:
    """Edit ``features`` (``mode``: "zero", "mean", or "steer" = add ``alpha`` to each) at ``positions`` (names, or
    "all"), and ``n_random`` random sets of as many features; compliance per arm and the gap for each."""
    from interp_af.checks import finite_floats, nonneg_int, positive_int

    nonneg_int(n_random, "n_random", "0 = no random controls")
    positive_int(batch_size, "batch_size")
    nonneg_int(skip_first, "skip_first")
    finite_floats([alpha], "alpha")
    handle = as_handle(handle)
    sae = as_sae(sae)
    if mode not in MODES:
        raise InterpAFError(f"feature intervention mode {mode!r} is unknown; use one of {', '.join(MODES)}")
    feats = torch.as_tensor(list(features), dtype=torch.long)
    if feats.numel() == 0:
        raise InterpAFError("no features given; pass at least one feature id")
    if int(feats.min()) < 0 or int(feats.max()) >= sae.d_sae:
        raise InterpAFError(f"feature ids {features} outside 0..{sae.d_sae - 1} of SAE {sae.source}")
    arms_t = _run.arms_of(prompts, arms)
    all_pos = positions == "all"
    names: tuple[str, ...] = ("decision",) if all_pos else tuple([positions] if isinstance(positions, str) else positions)
    key = sae.site
    mean = _mean_acts(handle, sae, prompts, dt, names, all_pos, batch_size, skip_first) if mode == "mean" else None

    # first sweep: features that fire at the edited positions, the pool for the random controls
    if random_pool is None and n_random > 0:
        fired = _mean_acts(handle, sae, prompts, dt, names, all_pos, batch_size, skip_first) if mean is None else mean
        random_pool = [int(i) for i in torch.nonzero(fired > 0).flatten() if int(i) not in set(feats.tolist())]
    pool = np.array(sorted(set(random_pool or []) - set(feats.tolist())), dtype=np.int64)
    if n_random > 0 and len(pool) < len(feats):
        pool = np.setdiff1d(np.arange(sae.d_sae), feats.numpy())
    rng = np.random.default_rng(seed)
    sets = [feats] + [torch.as_tensor(rng.choice(pool, size=len(feats), replace=False)) for _ in range(n_random)]

    lds: list[list[Tensor]] = [[] for _ in range(len(sets) + 1)]
    for pb in tqdm(list(_run.batches(handle, prompts, dt, names, batch_size)), desc=f"SAE {mode} {key}", leave=False,
                   disable=not progress):
        clean = handle.forward(pb.batch, capture=(key,), capture_positions=None if all_pos else pb.positions)
        lds[0].append(_run.logit_diff(clean.logits[:, -1], dt).float().cpu())
        if all_pos:
            spans = _run.row_spans(pb.batch, skip_first)
            xs = _run.gather_rows(clean.acts[key], pb.batch, spans)
        else:
            spans, xs = [pb.positions], [clean.acts[key]]
        fs = [sae.encode(x) for x in xs]
        for s, fset in enumerate(sets, start=1):
            ivs = []
            for b, (pos, x, f) in enumerate(zip(spans, xs, fs)):
                delta = (sae.decode(_edit(f, fset.to(f.device), mode, alpha, mean)) - sae.decode(f)).to(x.dtype)
                rows = torch.tensor([b], device=pos.device) if all_pos else None
                ivs.append(Intervention(key.site, key.layer, "add", pos, delta, rows=rows))
            out = handle.forward(pb.batch, interventions=ivs)
            lds[s].append(_run.logit_diff(out.logits[:, -1], dt).float().cpu())
    ld = [torch.cat(v).double().numpy() for v in lds]
    label = f"{mode}{'' if mode != 'steer' else f'{alpha:+g}'}"
    conds = [_condition("baseline", (), ld[0], prompts, arms_t), _condition(label, feats.tolist(), ld[1], prompts, arms_t)]
    conds += [_condition(f"random{i}", sets[i + 1].tolist(), ld[i + 2], prompts, arms_t) for i in range(n_random)]
    return FeatureIntervention(sae.source, str(key), mode, float(alpha), ("all",) if all_pos else names, arms_t,
                               conds[0], conds[1], tuple(conds[2:]))
