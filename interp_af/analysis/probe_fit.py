"""Fitting linear probes, one layer at a time, fast: logistic regression and difference of means.

Two probe kinds, because they answer different questions (Marks & Tegmark, "Geometry of Truth"):

- **logistic regression** (L2, scikit-learn's ``lbfgs``) is the better *classifier*; its regularisation ``C`` is
  chosen on a validation split of the training queries (grouped, so a query never sits on both sides) by
  :func:`choose_C`: the best validation AUROC, and **on a tie the larger C** (the same rule on the torch
  path, :mod:`.probe_torch`);
- **difference of means** (mean of class 1 minus mean of class 0) is the better *causal* direction: the one to
  steer and patch with. Its score is ``x . d`` with the threshold halfway between the class means.

Two directions per probe, because they are different vectors (:class:`LayerFit`): ``direction`` scores rows
(``x . direction + bias``); for logistic regression it is the weight fitted on standardised features mapped
back to raw units (``w_std / sd``), the **decision normal**, which divides every feature by its spread and so
points away from the classes' difference wherever features differ in scale. ``class_direction`` is the mean
difference of the same training rows, the **class direction**: the one geometry (cosines with the cue
embedding, with other probes) and steering must use. Where the representation *is* the cue-embedding
difference, the class direction has cosine ~1 with it and the decision normal may read ~0.2.

Splits (:class:`Split`: train and test rows, plus the inner validation split) are always built from *groups*
(queries) by :func:`make_folds` / :func:`make_splits`: a probe that sees one arm of a query in training and the other in test learns the query,
not the concept.

**Why it is fast.** Residual streams are wide (d = 4096 at 8B) and capture sets are small (a few hundred
prompts), so ``d >> n``. The L2 logistic loss depends on the data only through inner products, and its optimum
lies in the span of the training rows (representer theorem), so the fit on ``X_train [n, d]`` is *exactly* the
fit on ``Z_train = U S^1/2 [n, r]`` where ``X_train X_train^T = U S U^T``; held-out rows map to
``Z = X X_train^T U S^-1/2``. One Gram matrix per fold replaces ``d``-wide features by ``n``-wide ones (about 10x
fewer at 4096). On top: warm starts along the ``C`` grid (small to large), and layers in parallel (joblib).
Where ``d <= n`` the features are used as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from interp_af.errors import InterpAFError



@dataclass(frozen=True)
class Split:
    """Row indices of one fit: ``train``/``test`` into the data, ``inner_train``/``inner_val`` into ``train``
    (the grouped validation split that chooses C). Built once per sweep by :func:`make_splits`, shared by layers."""

    train: np.ndarray
    test: np.ndarray
    inner_train: np.ndarray
    inner_val: np.ndarray


@dataclass(frozen=True)
class FitSpec:
    """Solver settings shared by every layer of a sweep (see :class:`interp_af.analysis.probes.ProbeConfig`)."""

    Cs: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
    standardize: bool = True
    max_iter: int = 1000
    tol: float = 1e-4
    val_frac: float = 0.25
    seed: int = 0
    kernel_trick: bool = True


@dataclass(frozen=True)
class LayerFit:
    """One layer's fits: held-out scores per split, and the probe fitted on every training row of the last split.

    ``scores[i]`` are decision values (``> 0`` = class 1) for ``splits[i]``'s test rows; ``direction``/``bias`` act
    on *raw* activations (``score = x . direction + bias``), whatever standardisation was used inside: for
    logistic regression the decision normal, for difference of means the class direction. ``class_direction``
    is always the class direction (mean of class 1 minus mean of class 0 over the last split's training rows).
    """

    scores: tuple[np.ndarray, ...]
    Cs: tuple[float, ...]          # chosen C per split (NaN for difference of means)
    direction: np.ndarray          # [d] from the final split: what scores rows
    bias: float
    class_direction: np.ndarray | None = None   # [d] from the final split: what geometry and steering use


TIE_TOL = 1e-9   # validation AUROCs this close count as a tie (they are ratios of pair counts: exact or not)


def choose_C(val_auroc: np.ndarray) -> int:
    """Index of the chosen C in a grid sorted *ascending*, from its validation AUROCs: the best, and on a tie
    (within :data:`TIE_TOL`) the **largest** C.

    Why the larger: a validation split of a few dozen queries often separates perfectly at every C, and the
    smallest C then shrinks every weight toward zero, which on standardised features lets the noisiest
    dimensions weigh as much as the informative ones: measured on a real model, up to 0.10 AUROC lost against
    C=1 on the same folds. Among equals the least-regularised probe is the one that fits the training rows.
    NaN (a validation split with one class) never wins."""
    v = np.where(np.isnan(np.asarray(val_auroc, dtype=np.float64)), -np.inf, np.asarray(val_auroc, dtype=np.float64))
    return int(np.flatnonzero(v >= v.max() - TIE_TOL).max())


def class_direction(X_ND: np.ndarray, y_N: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Mean of class 1 minus mean of class 0 over ``rows`` (raw units, float64) ``[d]``."""
    X = np.asarray(X_ND[rows], dtype=np.float64)
    y = np.asarray(y_N[rows]).astype(bool)
    return X[y].mean(0) - X[~y].mean(0)


# ----------------------------------------------------------------------------------------------- splits
def _grouped_stratified(y_N: np.ndarray, groups_N: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold id per row: whole groups dealt round-robin to ``k`` folds after a shuffle and a stable sort by each
    group's share of positives, so every fold gets groups of every composition (stratified by label).
    (scikit-learn's StratifiedGroupKFold does a greedy search per group: 0.1 s per call at 200 queries.)"""
    uniq, gidx = np.unique(groups_N, return_inverse=True)
    share = np.bincount(gidx, weights=np.asarray(y_N, dtype=float), minlength=len(uniq)) / np.bincount(gidx)
    order = np.random.default_rng(seed).permutation(len(uniq))
    order = order[np.argsort(share[order], kind="stable")]
    fold_of_group = np.empty(len(uniq), dtype=np.int64)
    fold_of_group[order] = np.arange(len(uniq)) % k
    return fold_of_group[gidx]


def make_folds(y_N: np.ndarray, groups_N: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Fold id per row (``[N]``, 0..n_folds-1), grouped by ``groups`` and stratified by label."""
    n_groups = len(np.unique(groups_N))
    if n_groups < n_folds:
        raise InterpAFError(f"only {n_groups} distinct queries for {n_folds} folds: use fewer folds (--folds) or more queries")
    return _grouped_stratified(y_N, groups_N, n_folds, seed)


def inner_split(y_N: np.ndarray, groups_N: np.ndarray, val_frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A grouped train/validation split of training rows for choosing ``C``: both sides keep both classes."""
    n_groups = len(np.unique(groups_N))
    k = int(min(max(2, round(1.0 / val_frac)), n_groups))
    if k < 2:
        raise InterpAFError("fewer than 2 queries in a training fold: cannot choose C; use more queries or fewer folds")
    fold = _grouped_stratified(y_N, groups_N, k, seed)
    for f in range(k):
        tr, va = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        if len(np.unique(y_N[tr])) == 2 and len(np.unique(y_N[va])) == 2:
            return tr, va
    raise InterpAFError("no grouped validation split keeps both classes: the label barely varies; use more queries")


def make_splits(y_N: np.ndarray, groups_N: np.ndarray, pairs: list[tuple[np.ndarray, np.ndarray]], val_frac: float,
                seed: int, *, need_inner: bool = True) -> list[Split]:
    """:class:`Split` objects for ``(train_rows, test_rows)`` pairs, with the inner validation split of each."""
    out = []
    for tr, te in pairs:
        tr, te = np.asarray(tr, dtype=np.int64), np.asarray(te, dtype=np.int64)
        if len(np.unique(y_N[tr])) < 2:
            raise InterpAFError("a training fold holds one class only: the label barely varies; use more queries or fewer folds")
        i_in, i_va = inner_split(y_N[tr], groups_N[tr], val_frac, seed) if need_inner else (np.arange(len(tr)), np.arange(0))
        out.append(Split(tr, te, i_in, i_va))
    return out


# ----------------------------------------------------------------------------------------------- helpers
def _auroc(scores: np.ndarray, y: np.ndarray) -> float:
    """Mann-Whitney AUROC (ties count one half): sklearn's ``roc_auc_score`` without its ~5 ms of input checks."""
    from scipy.stats import rankdata

    y = np.asarray(y, dtype=bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(scores)
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _kernel_features(G_tt: np.ndarray, G_ot: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(Z_train, Z_other, back)`` from Gram blocks: ``Z_train Z_train^T = G_tt``; ``back [n_train, r]`` maps a
    coefficient vector ``beta`` in Z-space to row weights ``alpha = back @ beta`` (``w = X_train^T alpha``)."""
    S_t, U_t = torch.linalg.eigh(torch.from_numpy(G_tt.astype(np.float64)))
    S, U = S_t.numpy(), U_t.numpy()
    keep = S > S.max() * 1e-6  # float32 Gram: smaller eigenvalues are rounding noise (and L2 kills them anyway)
    if not keep.any():  # all training rows identical after standardising: one zero feature, intercept-only fit
        n_t, n_o = G_tt.shape[0], G_ot.shape[0]
        return np.zeros((n_t, 1)), np.zeros((n_o, 1)), np.zeros((n_t, 1))
    S, U = S[keep], U[:, keep]
    inv_sqrt = 1.0 / np.sqrt(S)
    back = U * inv_sqrt
    return U * np.sqrt(S), G_ot.astype(np.float64) @ back, back


def _new_lr(spec: FitSpec, warm: bool):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=spec.Cs[0], solver="lbfgs", max_iter=spec.max_iter, tol=spec.tol, warm_start=warm)


def _fit_logreg_split(X_ND: np.ndarray, y_N: np.ndarray, sp: Split, spec: FitSpec) -> tuple[np.ndarray, float, np.ndarray, float]:
    """Choose C on a grouped inner split of ``tr``, refit on all of ``tr``; return (test scores, C, w_raw, b_raw)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    tr, te, i_in, i_va = sp.train, sp.test, sp.inner_train, sp.inner_val
    Xtr = X_ND[tr].astype(np.float32)
    mu = Xtr.mean(0) if spec.standardize else np.zeros(X_ND.shape[1], np.float32)
    sd = Xtr.std(0) if spec.standardize else np.ones(X_ND.shape[1], np.float32)
    sd = np.where(sd > 0, sd, 1.0).astype(np.float32)  # StandardScaler's rule for constant features
    A_tr = (Xtr - mu) / sd
    A_te = (X_ND[te].astype(np.float32) - mu) / sd
    ytr = y_N[tr]
    use_kernel = spec.kernel_trick and X_ND.shape[1] > len(tr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if use_kernel:
            G = torch.from_numpy(A_tr) @ torch.from_numpy(A_tr).T  # [n_tr, n_tr]; every block below is a slice
            G = G.numpy()
            Z_in, Z_va, _ = _kernel_features(G[np.ix_(i_in, i_in)], G[np.ix_(i_va, i_in)])
        else:
            Z_in, Z_va = A_tr[i_in], A_tr[i_va]
        # Warm starts along the C path, small to large: each solution starts the next (fewer lbfgs steps).
        lr = _new_lr(spec, warm=True)
        val, path = [], []
        for c in sorted(spec.Cs):
            lr.set_params(C=c).fit(Z_in, ytr[i_in])
            val.append(_auroc(lr.decision_function(Z_va), ytr[i_va]))
            path.append((lr.coef_.copy(), lr.intercept_.copy()))
        best = choose_C(np.asarray(val))
        best_c = sorted(spec.Cs)[best]
        final = _new_lr(spec, warm=not use_kernel).set_params(C=best_c)
        if not use_kernel:  # same feature space as the inner fits: start the refit from the inner solution
            final.coef_, final.intercept_ = path[best]
        if use_kernel:
            G_te = (torch.from_numpy(A_te) @ torch.from_numpy(A_tr).T).numpy() if len(te) else np.zeros((0, len(tr)), np.float32)
            Z_tr, Z_te, back = _kernel_features(G, G_te)
            final.fit(Z_tr, ytr)
            w_std = A_tr.T.astype(np.float64) @ (back @ final.coef_[0])  # w = X_train^T alpha
        else:
            Z_te = A_te
            final.fit(A_tr, ytr)
            w_std = final.coef_[0].astype(np.float64)
    scores = final.decision_function(Z_te) if len(te) else np.zeros(0)
    b_std = float(final.intercept_[0])
    w_raw = w_std / sd
    return scores, best_c, w_raw, b_std - float(w_raw @ mu)


def _fit_diffmean_split(X_ND: np.ndarray, y_N: np.ndarray, tr: np.ndarray, te: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    Xtr = X_ND[tr].astype(np.float64)
    mu1, mu0 = Xtr[y_N[tr] == 1].mean(0), Xtr[y_N[tr] == 0].mean(0)
    d = mu1 - mu0
    b = -float(d @ (mu1 + mu0) / 2)
    return X_ND[te].astype(np.float64) @ d + b, d, b


def fit_layer(X_ND: np.ndarray, y_N: np.ndarray, splits: list[Split], kind: str, spec: FitSpec) -> LayerFit:
    """Fit one layer for every split. The *last* split's probe becomes ``direction``/``bias`` (end with an
    ``(all_rows, empty)`` split to get the probe trained on everything)."""
    from threadpoolctl import threadpool_limits

    # One BLAS thread per fit: the matrices here are small (n x n), where OpenBLAS's spinning threads cost more
    # than they give (measured 100x slower eigh on a busy 2-core machine); parallelism comes from layers instead.
    with threadpool_limits(limits=1):
        return _fit_layer(X_ND, y_N, splits, kind, spec)


def _fit_layer(X_ND: np.ndarray, y_N: np.ndarray, splits: list[Split], kind: str, spec: FitSpec) -> LayerFit:
    scores, cs, w, b = [], [], np.zeros(X_ND.shape[1]), 0.0
    if kind not in ("logreg", "diffmean"):
        raise InterpAFError(f"unknown probe kind {kind!r}: use 'logreg' or 'diffmean'")
    for sp in splits:
        if kind == "logreg":
            s, c, w, b = _fit_logreg_split(X_ND, y_N, sp, spec)
        else:
            (s, w, b), c = _fit_diffmean_split(X_ND, y_N, sp.train, sp.test), float("nan")
        scores.append(np.asarray(s, dtype=np.float64))
        cs.append(float(c))
    cd = np.asarray(w, dtype=np.float64) if kind == "diffmean" else class_direction(X_ND, y_N, splits[-1].train)
    return LayerFit(scores=tuple(scores), Cs=tuple(cs), direction=np.asarray(w, dtype=np.float64), bias=float(b),
                    class_direction=cd)


def fit_layers(X_NLD, y_N: np.ndarray, splits: list[Split], kind: str, spec: FitSpec, *,
               n_jobs: int = 1, desc: str = "probe layers", device: str = "cpu",
               progress: bool = False) -> list[LayerFit]:
    """:func:`fit_layer` for every layer of ``X [N, L, D]`` (numpy or torch, memory-mapped is fine), layers in
    parallel over ``n_jobs`` processes for logistic regression (difference of means is cheap: run inline).
    ``device`` other than "cpu" (e.g. "cuda", or "torch-cpu" to test it) solves all layers at once in torch
    (:mod:`.probe_torch`). ``progress``: a bar over layers (off by default: the probes stage draws one bar over
    its (label, position) jobs instead, which ``--quiet`` turns off)."""
    from tqdm import tqdm

    if device != "cpu":
        from .probe_torch import fit_layers_torch

        return fit_layers_torch(X_NLD, y_N, splits, kind, spec, device="cpu" if device == "torch-cpu" else device)

    L = X_NLD.shape[1]

    def layer(l: int) -> np.ndarray:
        x = X_NLD[:, l]
        return x.float().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float32)

    if kind == "logreg" and n_jobs != 1 and L > 1:
        from joblib import Parallel, delayed

        return list(Parallel(n_jobs=n_jobs)(
            delayed(fit_layer)(layer(l), y_N, splits, kind, spec) for l in tqdm(range(L), desc=desc, leave=False,
                                                                         disable=not progress)))
    return [fit_layer(layer(l), y_N, splits, kind, spec) for l in tqdm(range(L), desc=desc, leave=False,
                                                                    disable=not progress or L < 8)]
