"""SAE quality on the prompts actually studied.

Public SAEs were trained on web text; the alignment-faking prompts are long system prompts with tags, unlike
that text, so reconstruction must be measured on them before features are read. Four numbers per SAE:

- **FVE** (fraction of variance explained): ``1 - sum|x - x_hat|^2 / sum|x - mean(x)|^2`` over every token of
  every studied prompt (BOS left out by default: SAEs are not trained to reconstruct it);
- **L0**: mean number of active features per token (also per named position);
- **dead features**: features that never fire on these prompts;
- **splice**: the compliance metric (logit difference at the decision) when the SAE's reconstruction replaces
  the activation at every position: *with* the error term (``x_hat + (x - x_hat)``: must equal the clean
  metric to float precision, which checks the splice itself) and *without* it (``x_hat`` alone: how much of
  the decision the SAE's features carry).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from interp_af.models.wrap import as_handle
from interp_af.analysis.sae.load import as_sae
from interp_af.setting.types import RenderedPrompt

from . import _run
from .load import LoadedSAE


@dataclass(frozen=True)
class SAEQuality:
    """Reconstruction and splice quality of one SAE on a prompt set (all metric numbers in logit-diff units)."""

    sae: str
    site: str
    n_prompts: int
    n_tokens: int
    d_sae: int
    fve: float
    l0: float
    dead_fraction: float
    metric_clean: float                 # mean logit diff, unspliced
    splice_err_max_abs: float           # max |metric(with error term) - metric(clean)| over prompts
    splice_noerr_mean_abs: float        # mean |metric(SAE reconstruction only) - metric(clean)|
    splice_noerr_mean: float            # mean signed change, reconstruction only
    compliance_clean: float             # mean sigmoid(logit diff)
    compliance_noerr: float
    by_position: dict[str, dict[str, float]] = field(default_factory=dict)   # name -> {"fve", "rel_mse", "l0"}
    rel_mse: float = float("nan")       # SSE / sum |x|^2 over all scored tokens
    skip_first: int = 1

    def to_frame(self) -> pd.DataFrame:
        row = {k: v for k, v in asdict(self).items() if k != "by_position"}
        for name, stats in self.by_position.items():
            for k, v in stats.items():
                row[f"{k}@{name}"] = v
        return pd.DataFrame([row])

    def save(self, path: str | Path) -> Path:
        from interp_af import atomic, owned

        path = Path(path)
        owned.ensure_dir(path.parent, what="sae quality")
        return atomic.write_json(path, asdict(self))

    @classmethod
    def load(cls, path: str | Path) -> "SAEQuality":
        return cls(**json.loads(Path(path).read_text()))


class _Moments:
    """Running sums for FVE: SSE, sum x, sum |x|^2, count (float64, so long prompt sets do not lose precision)."""

    def __init__(self, d: int):
        self.sse, self.sq, self.n = 0.0, 0.0, 0
        self.sum = torch.zeros(d, dtype=torch.float64)

    def add(self, x: torch.Tensor, rec: torch.Tensor) -> None:
        x64 = x.double().reshape(-1, x.shape[-1]).cpu()
        self.sse += float((x64 - rec.double().reshape(x64.shape).cpu()).pow(2).sum())
        self.sq += float(x64.pow(2).sum())
        self.sum += x64.sum(0)
        self.n += x64.shape[0]

    def rel_mse(self) -> float:
        """SSE / sum |x|^2: the share of the activation's squared norm not reconstructed (meaningful at a single
        position, where the variance across prompts can be far smaller than the norm)."""
        return self.sse / self.sq if self.sq > 0 else float("nan")

    def fve(self) -> float:
        sst = self.sq - float(self.sum.pow(2).sum()) / max(self.n, 1)
        return float(1 - self.sse / sst) if sst > 0 else float("nan")


@torch.no_grad()
def sae_quality(handle: Any, sae: LoadedSAE, prompts: Sequence[RenderedPrompt], dt: Any, *,
                positions: Sequence[str] = ("decision",), batch_size: int = 8, skip_first: int = 1,
                progress: bool = True) -> SAEQuality:
    """Measure :class:`SAEQuality` of ``sae`` on ``prompts`` (three forward passes per batch: clean, spliced with
    the error term, spliced without it). ``skip_first`` leading positions (BOS) are neither scored nor spliced."""
    from interp_af.checks import nonneg_int, positive_int

    positive_int(batch_size, "batch_size")
    nonneg_int(skip_first, "skip_first")
    handle = as_handle(handle)
    sae = as_sae(sae)
    key = sae.site
    total = _Moments(sae.d_in)
    per_pos = {name: _Moments(sae.d_in) for name in positions}
    l0_sum, l0_pos = 0.0, {name: 0.0 for name in positions}
    fired = torch.zeros(sae.d_sae, dtype=torch.bool)
    clean, with_err, no_err = [], [], []
    for pb in tqdm(list(_run.batches(handle, prompts, dt, positions, batch_size)), desc=f"SAE quality {key}",
                   leave=False, disable=not progress):
        out = handle.forward(pb.batch, capture=(key,))
        x_BTD = out.acts[key]
        clean.append(_run.logit_diff(out.logits[:, -1], dt).float().cpu())
        spans = _run.row_spans(pb.batch, skip_first)
        xs = _run.gather_rows(x_BTD, pb.batch, spans)
        recs, errs = [], []
        for x in xs:
            f = sae.encode(x)
            rec = sae.decode(f).to(x.dtype)
            recs.append(rec)
            errs.append(x - rec)
            total.add(x, rec)
            l0_sum += float((f > 0).sum())
            fired |= (f > 0).reshape(-1, sae.d_sae).any(0).cpu()
        rows = torch.arange(len(xs), device=x_BTD.device)
        for j, name in enumerate(positions):
            xp = x_BTD[rows, pb.batch.columns(pb.positions)[:, j]]
            fp = sae.encode(xp)
            per_pos[name].add(xp, sae.decode(fp))
            l0_pos[name] += float((fp > 0).sum())
        # the error term restores x exactly: rec + (x - rec), computed in the activation's dtype
        out_e = handle.forward(pb.batch, interventions=_run.replace_rows(key, spans, [r + e for r, e in zip(recs, errs)]))
        with_err.append(_run.logit_diff(out_e.logits[:, -1], dt).float().cpu())
        out_n = handle.forward(pb.batch, interventions=_run.replace_rows(key, spans, recs))
        no_err.append(_run.logit_diff(out_n.logits[:, -1], dt).float().cpu())
    c, e, n = (torch.cat(v).numpy().astype(np.float64) for v in (clean, with_err, no_err))
    sig = lambda v: float(np.mean(1 / (1 + np.exp(-v))))  # noqa: E731
    return SAEQuality(
        sae=sae.source, site=str(key), n_prompts=len(prompts), n_tokens=total.n, d_sae=sae.d_sae,
        fve=total.fve(), rel_mse=total.rel_mse(), l0=l0_sum / max(total.n, 1), dead_fraction=float((~fired).float().mean()),
        metric_clean=float(c.mean()), splice_err_max_abs=float(np.abs(e - c).max()),
        splice_noerr_mean_abs=float(np.abs(n - c).mean()), splice_noerr_mean=float((n - c).mean()),
        compliance_clean=sig(c), compliance_noerr=sig(n),
        by_position={name: {"fve": per_pos[name].fve(), "rel_mse": per_pos[name].rel_mse(),
                           "l0": l0_pos[name] / len(prompts)} for name in positions},
        skip_first=skip_first,
    )
