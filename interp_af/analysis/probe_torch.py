"""The same logistic-regression probes as :mod:`.probe_fit`, solved in torch for every layer at once (GPU).

scikit-learn fits one problem at a time on the CPU; on a GPU the win is to batch. For one split, every
layer's problem is put in the kernel form of :mod:`.probe_fit` (Gram matrix of the standardised training rows
-> ``Z [layers, n, r]``, so the width ``d`` drops out), then all (layer x C) problems are solved together by
Newton's method with a batched Cholesky solve and step halving. The optimum is the one sklearn's ``lbfgs``
reaches (the objective is the same: ``C * sum(log-loss) + ||w||^2 / 2``, intercept unpenalised); Newton just
gets there in ~10 steps to high precision. C is chosen per layer on the same inner validation split, by the
same rule (:func:`.probe_fit.choose_C`: best validation AUROC, ties to the larger C).

On a 2-core CPU scikit-learn (:func:`.probe_fit.fit_layers`) is as fast or faster; pick this path with
``ProbeConfig(device="cuda")`` (or ``"cpu"`` to test it). Difference-of-means probes need no solver and
also run here, batched over layers.
"""

from __future__ import annotations

import numpy as np
import torch

from .probe_fit import TIE_TOL, FitSpec, LayerFit, Split


def _auroc_batched(scores_BN: torch.Tensor, y_N: torch.Tensor) -> torch.Tensor:
    """AUROC of each row of ``scores`` (ties count one half) -> ``[B]``."""
    pos, neg = scores_BN[:, y_N], scores_BN[:, ~y_N]
    gt = (pos[:, :, None] > neg[:, None, :]).to(scores_BN.dtype).mean((1, 2))
    eq = (pos[:, :, None] == neg[:, None, :]).to(scores_BN.dtype).mean((1, 2))
    return gt + 0.5 * eq


def choose_C_batched(val_LC: torch.Tensor) -> torch.Tensor:
    """:func:`.probe_fit.choose_C` for every row of ``val [layers, Cs]`` (Cs ascending) -> index ``[layers]``:
    the best validation AUROC, ties (within ``TIE_TOL``) to the largest C; NaN never wins."""
    v = torch.nan_to_num(val_LC.double(), nan=float("-inf"))
    tied = v >= v.amax(1, keepdim=True) - TIE_TOL
    idx = torch.arange(v.shape[1], device=v.device).expand_as(v)
    return torch.where(tied, idx, torch.full_like(idx, -1)).amax(1)


def newton_logreg(Z_BNR: torch.Tensor, y_N: torch.Tensor, C_B: torch.Tensor, *, max_iter: int = 50,
                  tol: float = 1e-10) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimise ``C * sum log(1 + exp(-s * (Z b + c))) + |b|^2 / 2`` for each batch entry -> ``(beta [B, R], bias [B])``."""
    B, N, R = Z_BNR.shape
    dt = Z_BNR.dtype
    Zh = torch.cat([Z_BNR, torch.ones(B, N, 1, dtype=dt, device=Z_BNR.device)], 2)   # [B, N, R+1]
    reg = torch.ones(R + 1, dtype=dt, device=Z_BNR.device)
    reg[-1] = 1e-12  # the intercept is not penalised (a whisper of ridge keeps H positive definite)
    y = y_N.to(dt)
    C = C_B.to(dt)[:, None]
    w = torch.zeros(B, R + 1, dtype=dt, device=Z_BNR.device)

    def objective(w_: torch.Tensor) -> torch.Tensor:
        f = torch.einsum("bnr,br->bn", Zh, w_)
        return (C * (torch.nn.functional.softplus(f) - y * f)).sum(1) + 0.5 * (reg * w_ * w_).sum(1)

    obj = objective(w)
    for _ in range(max_iter):
        f = torch.einsum("bnr,br->bn", Zh, w)
        p = torch.sigmoid(f)
        grad = torch.einsum("bnr,bn->br", Zh, C * (p - y)) + reg * w
        H = torch.einsum("bnr,bn,bns->brs", Zh, C * p * (1 - p), Zh) + torch.diag_embed(reg.expand(B, -1))
        L, info = torch.linalg.cholesky_ex(H)
        step = torch.cholesky_solve(grad[:, :, None], L)[:, :, 0]
        # Newton decrement: half of grad . H^-1 grad estimates the remaining gap to the optimum
        if ((grad * step).sum(1) / 2 <= tol * (1 + obj.abs())).all():
            break
        # step halving where the full Newton step does not decrease the objective
        t = torch.ones(B, 1, dtype=dt, device=w.device)
        for _ in range(20):
            new = objective(w - t * step)
            bad = new > obj + 1e-12 * obj.abs()
            if not bad.any():
                break
            t = torch.where(bad[:, None], t / 2, t)
        w = w - t * step
        obj = objective(w)
    return w[:, :R], w[:, R]


def _kernel_batched(G_LTT: torch.Tensor, G_LOT: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batched :func:`.probe_fit._kernel_features`; small eigenvalues are zeroed (columns kept, so shapes agree)."""
    S, U = torch.linalg.eigh(G_LTT)
    keep = S > S.amax(1, keepdim=True) * 1e-6
    sq = torch.where(keep, S.clamp_min(0).sqrt(), torch.zeros_like(S))
    inv = torch.where(keep, 1.0 / S.clamp_min(1e-300).sqrt(), torch.zeros_like(S))
    back = U * inv[:, None, :]
    return U * sq[:, None, :], G_LOT @ back, back


def fit_layers_torch(X_NLD, y_N: np.ndarray, splits: list[Split], kind: str, spec: FitSpec,
                     device: str = "cuda") -> list[LayerFit]:
    """:func:`.probe_fit.fit_layers` on ``device``, every layer of a split in one batched solve."""
    X = X_NLD if isinstance(X_NLD, torch.Tensor) else torch.from_numpy(np.asarray(X_NLD))
    L, d = X.shape[1], X.shape[2]
    y_all = torch.from_numpy(np.asarray(y_N, dtype=bool))
    scores: list[list[np.ndarray]] = [[] for _ in range(L)]
    cs: list[list[float]] = [[] for _ in range(L)]
    dirs, biases, class_dirs = np.zeros((L, d)), np.zeros(L), np.zeros((L, d))
    Cs = torch.tensor(sorted(spec.Cs), dtype=torch.float64)
    for sp in splits:
        tr, te = torch.from_numpy(sp.train), torch.from_numpy(sp.test)
        Xtr = X[tr].to(device, torch.float32).transpose(0, 1)     # [L, n_tr, d]
        Xte = X[te].to(device, torch.float32).transpose(0, 1)     # [L, n_te, d]
        ytr = y_all[tr].to(device)
        if kind == "diffmean":
            mu1, mu0 = Xtr[:, ytr].double().mean(1), Xtr[:, ~ytr].double().mean(1)    # [L, d]
            w, b = mu1 - mu0, -((mu1 - mu0) * (mu1 + mu0) / 2).sum(1)
            s = torch.einsum("lnd,ld->ln", Xte.double(), w) + b[:, None]
            for l in range(L):
                scores[l].append(s[l].cpu().numpy())
                cs[l].append(float("nan"))
            dirs, biases = w.cpu().numpy(), b.cpu().numpy()
            class_dirs = dirs
            continue
        mu = Xtr.mean(1, keepdim=True) if spec.standardize else torch.zeros_like(Xtr[:, :1])
        sd = Xtr.std(1, unbiased=False, keepdim=True) if spec.standardize else torch.ones_like(Xtr[:, :1])
        sd = torch.where(sd > 0, sd, torch.ones_like(sd))
        A, At = (Xtr - mu) / sd, (Xte - mu) / sd
        # Kernel form always: Z is at most n_tr wide, and one Gram matrix per layer serves every block.
        G = (A @ A.transpose(1, 2)).double()                        # [L, n_tr, n_tr]
        i_in, i_va = torch.from_numpy(sp.inner_train).to(device), torch.from_numpy(sp.inner_val).to(device)
        Z_in, Z_va, _ = _kernel_batched(G[:, i_in][:, :, i_in], G[:, i_va][:, :, i_in])
        nC = len(Cs)
        beta, bias = newton_logreg(Z_in.repeat_interleave(nC, 0), ytr[i_in], Cs.to(device).repeat(L))
        s_va = torch.einsum("bnr,br->bn", Z_va.repeat_interleave(nC, 0), beta) + bias[:, None]
        val = _auroc_batched(s_va, ytr[i_va]).reshape(L, nC)
        best = choose_C_batched(val)                                 # ties to the larger C, as in probe_fit
        G_te = (At @ A.transpose(1, 2)).double()                     # [L, n_te, n_tr]
        Z_tr, Z_te, back = _kernel_batched(G, G_te)
        beta, bias = newton_logreg(Z_tr, ytr, Cs.to(device)[best])
        s = torch.einsum("lnr,lr->ln", Z_te, beta) + bias[:, None]
        w_std = torch.einsum("lnd,ln->ld", A.double(), torch.einsum("lnr,lr->ln", back, beta))
        w_raw = w_std / sd[:, 0].double()
        b_raw = bias - (w_raw * mu[:, 0].double()).sum(1)
        for l in range(L):
            scores[l].append(s[l].cpu().numpy())
            cs[l].append(float(Cs[best[l].item()]))
        dirs, biases = w_raw.cpu().numpy(), b_raw.cpu().numpy()
        class_dirs = (Xtr[:, ytr].double().mean(1) - Xtr[:, ~ytr].double().mean(1)).cpu().numpy()
    return [LayerFit(tuple(scores[l]), tuple(cs[l]), dirs[l], float(biases[l]), class_direction=class_dirs[l])
            for l in range(L)]
