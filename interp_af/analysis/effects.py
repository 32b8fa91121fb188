"""Normalised causal effects with query-bootstrap intervals.

Every causal number of this toolkit (a patched cell, a steered arm) starts as a *logit difference* (logit of
the accept token minus logit of the reject token at the decision position, :mod:`interp_af.models.metric`).
It is reported *normalised* so that 0 is the unpatched run and 1 is the run of the other condition:

    effect = (mean_q patched_q - mean_q target_q) / (mean_q source_q - mean_q target_q)

The ratio is taken of means over queries, not as a mean of per-query ratios: a query whose two arms barely
differ has a denominator near zero and would dominate a mean of ratios. Intervals come from resampling
*queries* with replacement (each replicate recomputes the ratio of means); with a single query the interval
collapses to the point.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def bootstrap_weights(n: int, n_boot: int, seed: int = 0) -> Tensor:
    """``[n_boot, n]`` weights of a bootstrap over ``n`` queries (counts of each query / n), float64."""
    from interp_af.checks import positive_int

    positive_int(n, "n", "queries to resample")
    positive_int(n_boot, "n_boot", "bootstrap resamples")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(n_boot, n))
    counts = np.zeros((n_boot, n))
    np.add.at(counts, (np.arange(n_boot)[:, None], draws), 1.0)
    return torch.from_numpy(counts / n)


def normalised_effect(patched_QC: Tensor, target_Q: Tensor, source_Q: Tensor,
                      weights_BQ: Tensor | None = None) -> Tensor:
    """Ratio-of-means normalised effect per cell: ``[C]`` (or ``[B, C]`` under bootstrap weights ``[B, Q]``)."""
    p = patched_QC.detach().to(torch.float64).cpu().reshape(patched_QC.shape[0], -1)
    t = target_Q.detach().to(torch.float64).cpu()
    s = source_Q.detach().to(torch.float64).cpu()
    if weights_BQ is None:
        return (p.mean(0) - t.mean()) / (s.mean() - t.mean())
    w = weights_BQ.to(torch.float64)
    den = (w @ s - w @ t)[:, None]
    return (w @ p - (w @ t)[:, None]) / den


def effect_interval(patched_QC: Tensor, target_Q: Tensor, source_Q: Tensor, *, n_boot: int = 1000,
                    level: float = 0.95, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Percentile bootstrap interval (over queries) of :func:`normalised_effect` -> ``(lo [C], hi [C])``.

    Replicates whose denominator is exactly zero (every drawn query has identical arms) are dropped. A cell
    whose values are NaN (never measured: a screen's unconfirmed cells) gets a NaN interval and drops nothing.
    ``n_boot=0`` returns the point estimate as both ends (no interval)."""
    from interp_af.checks import fraction, nonneg_int

    nonneg_int(n_boot, "n_boot", "0 = no interval")
    fraction(level, "level")
    n = patched_QC.shape[0]
    if n < 2 or n_boot < 1:
        point = normalised_effect(patched_QC, target_Q, source_Q)
        return point, point
    reps_BC = normalised_effect(patched_QC, target_Q, source_Q, bootstrap_weights(n, n_boot, seed))
    measured = torch.isfinite(patched_QC).all(0)
    reps_BC = reps_BC[torch.isfinite(reps_BC[:, measured]).all(1)]
    q = torch.tensor([(1 - level) / 2, 1 - (1 - level) / 2], dtype=torch.float64)
    lo_hi = torch.quantile(reps_BC, q, dim=0)
    return lo_hi[0], lo_hi[1]
