"""Scores for probes: AUROC and accuracy, with query-clustered bootstrap intervals.

A probe's quality is measured on held-out *queries*. The rows of one query (its free and paid arm, its
variants) are not independent, so intervals come from a **cluster bootstrap**: each replicate resamples whole
queries with replacement and re-scores. Resampling rows instead would make the intervals too narrow exactly
where the twins make the data look twice as large as it is.

Every replicate is a vector of row weights (how many times each row's query was drawn), so AUROC and
accuracy are computed for all replicates at once with a weighted Mann-Whitney statistic over one sort of the
scores; ties count one half, as in :func:`sklearn.metrics.roc_auc_score`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def weighted_auroc(scores_N: Tensor, y_N: Tensor, weights_BN: Tensor | None = None) -> Tensor:
    """AUROC of ``scores`` for binary labels ``y`` under each row-weight vector in ``weights`` -> ``[B]``.

    With ``weights=None`` this is the plain AUROC (``[1]``). NaN where a replicate has only one class.
    """
    scores = scores_N.detach().to(torch.float64).cpu()
    y = y_N.detach().to(torch.bool).cpu()
    w = torch.ones(1, scores.shape[0], dtype=torch.float64) if weights_BN is None else weights_BN.to(torch.float64).cpu()
    # One sort for every replicate; tied scores share a bin so that they count one half.
    uniq, inverse = torch.unique(scores, sorted=True, return_inverse=True)
    n_bins = uniq.shape[0]
    pos_BG = torch.zeros(w.shape[0], n_bins, dtype=torch.float64).index_add_(1, inverse[y], w[:, y])
    neg_BG = torch.zeros(w.shape[0], n_bins, dtype=torch.float64).index_add_(1, inverse[~y], w[:, ~y])
    neg_below_BG = torch.cumsum(neg_BG, dim=1) - neg_BG
    num_B = (pos_BG * (neg_below_BG + 0.5 * neg_BG)).sum(1)
    den_B = pos_BG.sum(1) * neg_BG.sum(1)
    return torch.where(den_B > 0, num_B / den_B.clamp_min(1e-300), torch.full_like(num_B, float("nan")))


def weighted_accuracy(pred_N: Tensor, y_N: Tensor, weights_BN: Tensor | None = None) -> Tensor:
    """Accuracy of boolean predictions under each row-weight vector -> ``[B]``."""
    correct = (pred_N.detach().cpu().bool() == y_N.detach().cpu().bool()).to(torch.float64)
    w = torch.ones(1, correct.shape[0], dtype=torch.float64) if weights_BN is None else weights_BN.to(torch.float64).cpu()
    return (w * correct).sum(1) / w.sum(1).clamp_min(1e-300)


def cluster_weights(groups_N: np.ndarray, n_boot: int, rng: np.random.Generator) -> Tensor:
    """Row weights ``[n_boot, N]`` of a cluster bootstrap: draw as many groups as there are, with replacement;
    each row gets the number of times its group was drawn."""
    _, gidx = np.unique(groups_N, return_inverse=True)
    n_groups = int(gidx.max()) + 1 if len(gidx) else 0
    counts_BG = rng.multinomial(n_groups, np.full(n_groups, 1.0 / max(n_groups, 1)), size=n_boot)
    return torch.from_numpy(counts_BG[:, gidx].astype(np.float64))


def fold_scores(
    scores_N: Tensor,
    y_N: Tensor,
    pred_N: Tensor,
    fold_N: np.ndarray,
    groups_N: np.ndarray,
    *,
    n_boot: int,
    seed: int,
    ci: float = 0.95,
) -> dict[str, float]:
    """Mean over test folds of AUROC and accuracy, with a cluster-bootstrap interval.

    Each fold is scored on its own (fold models differ in scale, so out-of-fold scores are not pooled); the
    bootstrap resamples queries inside each test fold and averages the fold scores of each replicate.
    Folds with a single class are skipped for AUROC (never silently for all: then the result is NaN).
    """
    rng = np.random.default_rng(seed)
    aucs, accs, boot_auc, boot_acc = [], [], [], []
    for f in np.unique(fold_N):
        m = fold_N == f
        s, y, p, g = scores_N[m], y_N[m], pred_N[m], groups_N[m]
        w = cluster_weights(g, n_boot, rng) if n_boot > 0 else None
        a = weighted_auroc(s, y)[0]
        accs.append(weighted_accuracy(p, y)[0])
        if w is not None:
            boot_acc.append(weighted_accuracy(p, y, w))
        if torch.isnan(a):
            continue
        aucs.append(a)
        if w is not None:
            boot_auc.append(weighted_auroc(s, y, w))
    lo_q, hi_q = (1 - ci) / 2, 1 - (1 - ci) / 2
    out = {
        "auroc": float(torch.stack(aucs).mean()) if aucs else float("nan"),
        "accuracy": float(torch.stack(accs).mean()),
        "auroc_lo": float("nan"), "auroc_hi": float("nan"), "accuracy_lo": float("nan"), "accuracy_hi": float("nan"),
    }
    if boot_auc:
        b = torch.stack(boot_auc).nanmean(0)  # a replicate that drew one class in a fold skips that fold
        b = b[~torch.isnan(b)]
        if len(b):
            out["auroc_lo"], out["auroc_hi"] = (float(v) for v in torch.quantile(b, torch.tensor([lo_q, hi_q], dtype=b.dtype)))
    if boot_acc:
        b = torch.stack(boot_acc).mean(0)
        out["accuracy_lo"], out["accuracy_hi"] = (float(v) for v in torch.quantile(b, torch.tensor([lo_q, hi_q], dtype=b.dtype)))
    return out
