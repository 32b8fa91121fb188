"""Screen, then confirm: attribution patching ranks every cell, exact patching measures the top ones.

An exact sweep of the residual stream of a 30-layer model at every position after the cue is 30 x ~120 cells
per twin: hours on two CPU cores. Attribution patching (:func:`interp_af.analysis.attribution.attribute`)
estimates every cell of the same grid from about three passes per twin. The screen keeps that estimate for
every cell and spends exact patching only on the ``k`` cells it ranks highest (by |estimated effect|, the
query-averaged normalised effect), so the cells a report names are measured, not estimated.

What this buys and what it cannot: a confirmed cell's value *is* the exact sweep's value on that cell (the
same targets, sources, positions and patching path); a cell the screen ranked low is only estimated, and AtP
is known to miss cells where the metric is far from linear in the activation (the residual stream, MLP
outputs). The Spearman correlation of estimate vs exact over the confirmed cells says how far the ranking held
on the cells that were checked; it says nothing about cells that were never confirmed. Every result of the
screen records both counts (``info["cells_confirmed"]``, ``info["cells_screened_only"]``), out of the cells at or
after the first differing token (``info["cells_live"]``; earlier cells are exactly zero in both runs).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from tqdm import tqdm

from interp_af.analysis.attribution import _pairs
from interp_af.analysis.patching import PatchResult, position_axis
from interp_af.checks import positive_int
from interp_af.errors import InterpAFError
from interp_af.models.patching import Cell
from interp_af.models.wrap import as_handle
from interp_af.setting.types import Twin


def top_cells(estimate: PatchResult, k: int) -> list[tuple[int, int, int]]:
    """The ``k`` grid cells ``(layer index, head index, column index)`` of largest |estimated effect|, largest
    first (cells whose estimate is NaN rank last)."""
    positive_int(k, "k", "cells to confirm")
    eff = torch.nan_to_num(estimate.effect().abs(), nan=-1.0)
    flat = eff.flatten()
    idx = torch.topk(flat, min(k, flat.numel())).indices.tolist()
    return [tuple(int(v) for v in torch.unravel_index(torch.tensor(i), eff.shape)) for i in idx]  # type: ignore[misc]


def confirm(model: Any, twins: Sequence[Twin], estimate: PatchResult, *, k: int = 16, dt: Any = None,
            batch_size: int = 64, progress: bool = True) -> PatchResult:
    """Exact patching of the ``k`` top cells of ``estimate`` on ``twins`` -> a :class:`PatchResult` on the
    estimate's grid: exact on those cells (``computed`` True), NaN on every other cell (screened only).

    ``estimate`` must come from :func:`~interp_af.analysis.attribution.attribute` on the same ``twins`` (its
    site, direction, clean arm and columns are reused, so the confirmed values are the exact sweep's)."""
    positive_int(batch_size, "batch_size")
    if tuple(tw.query_id for tw in twins) != estimate.query_ids:
        raise InterpAFError(f"the estimate covers queries {list(estimate.query_ids)[:4]}..., not the twins given; "
                            "confirm on the twins the estimate was computed on")
    h = as_handle(model)
    if dt is None:
        from interp_af.models.metric import decision_tokens

        dt = decision_tokens(h.tokenizer)
    clean = "a" if estimate.clean_arm in (twins[0].a.arm, "a") else "b"
    targets, sources = _pairs(twins, dt, clean, estimate.direction)
    if estimate.columns == ("all",):
        bins = [[tuple(range(len(t)))] for t in targets]
    else:
        labels, bins = position_axis(h.tokenizer, targets, sources)
        if tuple(labels) != estimate.columns:
            raise InterpAFError("the estimate's position axis differs from these twins'; confirm on the twins the "
                                "estimate was computed on")
    chosen = top_cells(estimate, k)
    Q = len(twins)
    patched = torch.full(estimate.patched.shape, float("nan"), dtype=torch.float64)
    target_ld = torch.zeros(Q, dtype=torch.float64)
    source_ld = torch.zeros(Q, dtype=torch.float64)
    rows, path = 0.0, ""
    first_live = len(estimate.columns)
    live_cols: set[int] = set()   # columns with a position at or after the first difference in some query
    for q in tqdm(range(Q), desc=f"confirm {estimate.site} ({estimate.direction})", disable=not progress or Q < 2):
        f = next(i for i, (x, y) in enumerate(zip(targets[q], sources[q])) if x != y)
        live_cols |= {x for x, pos in enumerate(bins[q]) if any(p >= f for p in pos)}
        first_live = min(live_cols | {first_live})
        cells, slots = [], []
        for i, j, x in chosen:
            live = tuple(p for p in bins[q][x] if p >= f)  # earlier positions: identical in both runs
            if live:
                cells.append(Cell(estimate.layers[i], None if estimate.heads[j] < 0 else estimate.heads[j], live))
                slots.append((i, j, x))
        run = h.patch_cells(estimate.site, targets[q], sources[q], cells, dt, batch_size=batch_size)
        target_ld[q], source_ld[q] = run.target, run.source
        rows, path = rows + run.rows, run.path
        for i, j, x in chosen:
            patched[q, i, j, x] = run.target   # a cell with no live position is exactly the unpatched run
        for (i, j, x), v in zip(slots, run.values.tolist()):
            patched[q, i, j, x] = v
    computed = torch.zeros(estimate.patched.shape[1:], dtype=torch.bool)
    for i, j, x in chosen:
        computed[i, j, x] = True
    total = int(computed.numel())
    # cells before the first differing token are exactly zero in both runs: neither screened nor patched
    live = len(estimate.layers) * len(estimate.heads) * len(live_cols)
    info = {"mode": "screen", "screen_method": str(estimate.info.get("method", "atp")), "confirm_top": k,
            "cells_total": total, "cells_live": live, "cells_confirmed": len(chosen),
            "cells_screened_only": live - len(chosen),
            "first_live_column": first_live, "path": path, "forward_rows": float(rows)}
    return PatchResult(site=estimate.site, direction=estimate.direction, clean_arm=estimate.clean_arm,
                       layers=estimate.layers, heads=estimate.heads, columns=estimate.columns,
                       query_ids=estimate.query_ids, patched=patched, target=target_ld, source=source_ld,
                       computed=computed, n_boot=estimate.n_boot, seed=estimate.seed, info=info)


def screen_check(estimates: dict[str, PatchResult], confirmed: dict[str, PatchResult]) -> Any:
    """The :class:`~interp_af.analysis.attribution.AttributionCheck` of the screen: estimate vs exact on the
    confirmed cells of each site (the same comparison :func:`validate_attribution` makes, at no extra cost)."""
    import pandas as pd

    from interp_af.analysis.attribution import AttributionCheck, spearman

    rows, rho = [], {}
    for site, res in confirmed.items():
        est, ex = estimates[site].effect(), res.effect()
        cells = [tuple(int(v) for v in c) for c in res.computed.nonzero().tolist()]
        cells.sort(key=lambda c: -abs(float(est[c])))
        rho[site] = spearman([float(est[c]) for c in cells], [float(ex[c]) for c in cells])
        for i, j, x in cells:
            rows.append(dict(site=site, layer=res.layers[i], head=res.heads[j], column=res.columns[x],
                             estimate=float(est[i, j, x]), exact=float(ex[i, j, x])))
    method = str(next(iter(estimates.values())).info.get("method", "atp")) if estimates else "atp"
    return AttributionCheck(method=method, spearman=rho, cells=pd.DataFrame(rows))
