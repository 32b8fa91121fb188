"""Attribution patching: a first-order estimate of every exact patch at once, and its IG refinement.

Exact patching costs one (partial) pass per cell. **Attribution patching** (AtP; Nanda, Syed et al.) replaces
each pass by a linear estimate: the effect of patching activation ``x`` from the target value ``t`` to the
source value ``s`` is about ``(s - t) . dM/dx`` evaluated on the target run. One target pass with gradients,
one source pass and one backward pass give the estimate for every site, layer, position and head: about
three forward passes in all, whatever the grid size.

It is good where the metric is close to linear in the activation (attention-head outputs) and poor where it
is not (MLP outputs, the residual stream: saturating nonlinearities downstream; Pearson 0.2 or lower on GPT-2
MLPs). **Integrated gradients** (``method="ig"``) averages the gradient over ``steps`` points on the straight
path from ``t`` to ``s`` at one layer (all positions of that layer interpolated together, as in Sparse
Feature Circuits), which follows the curvature the linear estimate misses; it costs ``steps`` rows per layer,
batched into one forward and one backward pass.

Estimates come back as :class:`~interp_af.analysis.patching.PatchResult` objects (``patched = target +
estimate``) on the same grid as exact patching, so they normalise, plot and compare the same way;
:func:`validate_attribution` runs exact patching on the top-k cells of each site and reports the Spearman
rank correlation per site type.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import pandas as pd
import torch
from torch import Tensor
from tqdm import tqdm

from interp_af.analysis.patching import PatchResult, _arm_name, _check_range, check_aligned, position_axis
from interp_af.errors import InterpAFError
from interp_af.models.metric import logit_diff
from interp_af.models.patching import Cell
from interp_af.models.sites import SITES, SiteKey
from interp_af.models.wrap import as_handle
from interp_af.setting.types import Twin

from interp_af.analysis.vocab import METHODS  # noqa: E402
DEFAULT_GRID = {"resid_pre": True, "resid_post": True, "attn_out": True, "mlp_out": True, "head_out": False}


def _pairs(twins: Sequence[Twin], dt: Any, clean: str, direction: str) -> tuple[list[list[int]], list[list[int]]]:
    shared = list(dt.shared)
    clean_ids = [list((tw.a if clean == "a" else tw.b).input_ids) + shared for tw in twins]
    corrupt_ids = [list((tw.b if clean == "a" else tw.a).input_ids) + shared for tw in twins]
    return (corrupt_ids, clean_ids) if direction == "denoise" else (clean_ids, corrupt_ids)


def _per_position(delta_T: Tensor, bins: list[tuple[int, ...]], f: int) -> Tensor:
    """Sum a per-position estimate ``[..., T]`` into the axis bins ``[..., X]`` (positions < f are exactly 0)."""
    out = torch.zeros(*delta_T.shape[:-1], len(bins), dtype=torch.float64)
    for k, pos in enumerate(bins):
        live = [p for p in pos if p >= f]
        if live:
            out[..., k] = delta_T[..., live].sum(-1)
    return out


def attribute(model: Any, twins: Sequence[Twin], *, sites: Sequence[str] = ("resid_pre", "attn_out", "mlp_out",
              "head_out"), method: str = "atp", direction: str = "denoise", clean: str = "a",
              by_position: dict[str, bool] | None = None, steps: int = 10, layers: Sequence[int] | None = None,
              dt: Any = None, n_boot: int = 1000, seed: int = 0, progress: bool = True,
              reuse_prefix: bool = True) -> dict[str, PatchResult]:
    """Attribution-patching estimates for every site in ``sites`` -> ``{site: PatchResult}``.

    ``method="atp"``: gradient x activation difference (2 forward + 1 backward pass per query for all sites; where
    the backend can cache a prefix (nnsight, ``auto``), the tokens both prompts share before the first difference
    run once, and the passes run the rest: ``reuse_prefix=False`` runs whole prompts, with the same numbers).
    ``method="ig"``: integrated gradients with ``steps`` interpolation points per layer. ``by_position``: per
    site, cells per position (default: True except ``head_out``, which is layer x head over all positions).
    """
    if method not in METHODS:
        raise InterpAFError(f"method {method!r} is unknown; use 'atp' or 'ig'")
    from interp_af.checks import nonneg_int, positive_int

    positive_int(steps, "steps", "integrated-gradient interpolation points")
    nonneg_int(n_boot, "n_boot", "0 = no intervals")
    bad = [s for s in sites if s not in SITES]
    if bad:
        raise InterpAFError(f"site(s) {bad} unknown; use some of {', '.join(SITES)}")
    if method == "ig" and steps < 1:
        raise InterpAFError(f"steps={steps}: integrated gradients needs at least 1 step (10 is usual)")
    check_aligned(twins)
    h = as_handle(model)
    layers_t = _check_range("layer", range(h.n_layers) if layers is None else layers, h.n_layers)
    grid = {**DEFAULT_GRID, **(by_position or {})}
    if dt is None:
        from interp_af.models.metric import decision_tokens

        dt = decision_tokens(h.tokenizer)
    targets, sources = _pairs(twins, dt, clean, direction)
    labels, bins = position_axis(h.tokenizer, targets, sources)
    Q = len(twins)
    est: dict[str, Tensor] = {}
    target_ld = torch.zeros(Q, dtype=torch.float64)
    source_ld = torch.zeros(Q, dtype=torch.float64)
    n_rows = 0.0
    t0 = time.perf_counter()
    for q in tqdm(range(Q), desc=f"attribution ({method})", disable=not progress or Q < 2):
        t_ids, s_ids = targets[q], sources[q]
        f = next(i for i, (x, y) in enumerate(zip(t_ids, s_ids)) if x != y)
        keys = [SiteKey(s, L) for s in sites for L in layers_t]
        # both prompts agree before f: their shared prefix runs once, without gradients (None: the backend
        # cannot run after a cached prefix, so whole prompts run)
        pre = _prefix(h, t_ids, f) if method == "atp" and reuse_prefix else None
        if pre is not None:
            deltas, ld_t, source_ld[q] = _atp_after(h, t_ids, s_ids, pre, keys, dt)
            n_rows += (f + 3.0 * (len(t_ids) - f)) / len(t_ids)
        else:
            with torch.no_grad():
                src = h.forward(h.collate([s_ids]), capture=keys)
            source_ld[q] = float(logit_diff(src.logits, dt)[0])
            if method == "atp":
                deltas, ld_t = _atp_one(h, t_ids, src, keys, dt)
                n_rows += 3.0
            else:
                deltas, ld_t, rows = _ig_one(h, t_ids, src, keys, dt, steps, f)
                n_rows += 1.0 + 3.0 * rows  # source pass + (forward + backward ~ 2 forwards) on the IG rows
        target_ld[q] = ld_t
        for key, d_T in deltas.items():  # [T] or [T, H]
            site = key.site
            if site not in est:
                H = d_T.shape[1] if d_T.dim() == 2 else 1
                X = len(labels) if grid[site] else 1
                est[site] = torch.zeros(Q, len(layers_t), H, X, dtype=torch.float64)
            d_HT = d_T.T if d_T.dim() == 2 else d_T[None]
            i = layers_t.index(key.layer)
            if grid[site]:
                est[site][q, i] = _per_position(d_HT, bins[q], f)
            else:
                est[site][q, i, :, 0] = d_HT[:, f:].sum(-1)
    elapsed = time.perf_counter() - t0
    out = {}
    for site in sites:
        e = est[site]
        heads = tuple(range(e.shape[2])) if site == "head_out" else (-1,)
        cols = tuple(labels) if grid[site] else ("all",)
        computed = torch.ones(e.shape[1:], dtype=torch.bool)
        out[site] = PatchResult(site=site, direction=direction, clean_arm=_arm_name(twins[0], clean), layers=layers_t,
                                heads=heads, columns=cols, query_ids=tuple(tw.query_id for tw in twins),
                                patched=target_ld[:, None, None, None] + e, target=target_ld.clone(),
                                source=source_ld.clone(), computed=computed, n_boot=n_boot, seed=seed,
                                info={"method": method, "steps": steps if method == "ig" else 0,
                                      "forward_rows": n_rows, "seconds": elapsed})
    return out


def _prefix(h: Any, t_ids: list[int], f: int) -> Any:
    make = getattr(h, "prefix", None)
    return make(t_ids[:f]) if make is not None and 0 < f < len(t_ids) else None


def _atp_after(h: Any, t_ids: list[int], s_ids: list[int], pre: Any, keys: list[SiteKey],
               dt: Any) -> tuple[dict, float, float]:
    """AtP over the suffixes only: the source's and the target's tokens from f on, each after the shared prefix
    (keys/values computed once, without gradients), so neither the two forward passes nor the backward pass
    run the prefix again. Positions before f get exactly 0: their activations are the same in both prompts."""
    f = pre.length
    with torch.no_grad():
        src = h.forward(h.collate([s_ids[f:]]), capture=keys, after=pre)
    deltas, ld_t = _atp_one(h, t_ids[f:], src, keys, dt, after=pre)
    T = len(t_ids)
    for k, d in deltas.items():
        full = torch.zeros(T, *d.shape[1:], dtype=d.dtype)
        full[f:] = d
        deltas[k] = full
    return deltas, ld_t, float(logit_diff(src.logits, dt)[0])


def _atp_one(h: Any, t_ids: list[int], src: Any, keys: list[SiteKey], dt: Any,
             after: Any = None) -> tuple[dict, float]:
    """One target pass with gradients + one backward: ``(s - t) . grad`` per position (and head)."""
    # ``after`` only when set: a user's own handle (the ModelHandle protocol) need not accept it
    out = h.forward(h.collate([t_ids]), capture=keys, grad=True, **({} if after is None else {"after": after}))
    ld = logit_diff(out.logits, dt)
    ld.sum().backward()
    deltas = {}
    for k in keys:
        act = out.acts[k]
        if act.grad is None:
            raise InterpAFError(f"the {getattr(h, 'backend', '?')} backend returned no gradient for {k}; "
                                "attribute this site with the TransformerLens backend (backend='tl')")
        diff = (src.acts[k].to(act.dtype) - act.detach())
        deltas[k] = (diff * act.grad).sum(-1)[0].double().cpu()  # [T] or [T, H]
    return deltas, float(ld.detach()[0])


def _ig_one(h: Any, t_ids: list[int], src: Any, keys: list[SiteKey], dt: Any, steps: int,
            f: int) -> tuple[dict, float, int]:
    """Integrated gradients per (site, layer): rows = keys x steps, each row interpolates one site's
    activation at every position >= f to ``t + alpha (s - t)`` (alpha at the midpoints of ``steps`` bins)."""
    from interp_af.models.interventions import Intervention

    with torch.no_grad():
        tgt = h.forward(h.collate([t_ids]), capture=keys)
    ld_t = float(logit_diff(tgt.logits, dt)[0])
    T = len(t_ids)
    alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps
    pos = torch.arange(f, T)[None].expand(steps, -1)
    values, ivs = {}, []
    for j, k in enumerate(keys):
        t_act, s_act = tgt.acts[k][0, f:], src.acts[k][0, f:]
        a = alphas.to(t_act.dtype).view(-1, *([1] * t_act.dim()))
        v = (t_act[None] + a * (s_act - t_act)[None]).detach().requires_grad_(True)  # [steps, P, ...]
        values[k] = v
        ivs.append(Intervention(site=k.site, layer=k.layer, op="replace", positions=pos, value=v,
                                rows=torch.arange(j * steps, (j + 1) * steps)))
    out = h.forward(h.collate([t_ids] * (steps * len(keys))), interventions=ivs, grad=True)
    logit_diff(out.logits, dt).sum().backward()
    deltas = {}
    for k in keys:
        g = values[k].grad.mean(0)  # average gradient along the path
        diff = (src.acts[k][0, f:] - tgt.acts[k][0, f:]).to(g.dtype)
        d = (diff * g).sum(-1).double().cpu()  # [P] or [P, H]
        full = torch.zeros(T, *d.shape[1:], dtype=torch.float64)
        full[f:] = d
        deltas[k] = full
    return deltas, ld_t, steps * len(keys)


@dataclass(frozen=True)
class AttributionCheck:
    """Exact patching on the top-k cells of each site vs the attribution estimate, with Spearman per site."""

    method: str
    spearman: dict[str, float]
    cells: pd.DataFrame = field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        return self.cells


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties); NaN for fewer than 3 points or a constant input."""
    from scipy.stats import spearmanr

    if len(x) < 3:
        return float("nan")
    r = spearmanr(x, y).statistic
    return float(r)


def validate_attribution(model: Any, twins: Sequence[Twin], estimates: dict[str, PatchResult], *, k: int = 20,
                         dt: Any = None, batch_size: int = 64, progress: bool = True) -> AttributionCheck:
    """Run exact patching on the ``k`` cells of largest |estimate| of each site (per query: cells are chosen
    on the query-averaged estimate) and return the Spearman correlation of estimate vs exact per site."""
    from interp_af.checks import positive_int

    positive_int(k, "k", "cells to check per site")
    positive_int(batch_size, "batch_size")
    if not estimates:
        raise InterpAFError("no estimates to validate; pass the dict attribute() returned")

    h = as_handle(model)
    tok = h.tokenizer
    if dt is None:
        from interp_af.models.metric import decision_tokens

        dt = decision_tokens(tok)
    any_res = next(iter(estimates.values()))
    clean = "a" if any_res.clean_arm in (twins[0].a.arm, "a") else "b"
    targets, sources = _pairs(twins, dt, clean, any_res.direction)
    _, bins = position_axis(tok, targets, sources)
    rows, rho = [], {}
    for site, res in estimates.items():
        eff = res.effect()  # [L, H, X]
        flat = eff.abs().flatten()
        top = torch.topk(flat, min(k, flat.numel())).indices.tolist()
        cells_idx = [tuple(int(v) for v in torch.unravel_index(torch.tensor(i), eff.shape)) for i in top]
        exact = torch.zeros(len(twins), len(cells_idx), dtype=torch.float64)
        tgt_ld = torch.zeros(len(twins), dtype=torch.float64)
        src_ld = torch.zeros(len(twins), dtype=torch.float64)
        for q in tqdm(range(len(twins)), desc=f"validate {site}", disable=not progress or len(twins) < 2):
            f = next(i for i, (x, y) in enumerate(zip(targets[q], sources[q])) if x != y)
            cells, slots = [], []
            for c, (i, j, x) in enumerate(cells_idx):
                pos = tuple(range(len(targets[q]))) if res.columns == ("all",) else bins[q][x]
                live = tuple(p for p in pos if p >= f)
                if live:
                    cells.append(Cell(res.layers[i], None if res.heads[j] < 0 else res.heads[j], live))
                    slots.append(c)
            run = h.patch_cells(site, targets[q], sources[q], cells, dt, batch_size=batch_size)
            lds, ld_t, ld_s = run.values, run.target, run.source
            exact[q], tgt_ld[q], src_ld[q] = ld_t, ld_t, ld_s
            for c, v in zip(slots, lds.tolist()):
                exact[q, c] = v
        from interp_af.analysis.effects import normalised_effect

        ex = normalised_effect(exact, tgt_ld, src_ld)
        est = torch.stack([eff[c] for c in cells_idx])
        rho[site] = spearman(est.tolist(), ex.tolist())
        for c, (i, j, x) in enumerate(cells_idx):
            rows.append(dict(site=site, layer=res.layers[i], head=res.heads[j], column=res.columns[x],
                             estimate=float(est[c]), exact=float(ex[c])))
    return AttributionCheck(method=str(any_res.info.get("method", "")), spearman=rho, cells=pd.DataFrame(rows))
