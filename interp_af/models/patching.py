"""Running a batch of activation patches for one twin pair: the one patching path every backend shares.

A *cell* is one patch: a layer, optionally a head, and a set of prompt positions at which the target run's
activation at one site is replaced by the source run's. All cells of one query share the same target prompt,
so a batch is ``R`` copies of that prompt, row ``r`` carrying cell ``r``'s patch: a sweep over layers x
positions is a few batched passes, not one pass per cell.

:meth:`ModelHandle.patch_cells <interp_af.models.handle.BaseHandle.patch_cells>` runs a list of cells and
returns a :class:`PatchRun`. The generic implementation here works on every backend: it captures the source
run's activations and replays them as ``replace`` :class:`~interp_af.models.interventions.Intervention`\\ s
through ``handle.forward``. A backend may add a fast implementation of the same contract
(:meth:`~interp_af.models.tl.TLHandle._patch_fast` on TransformerLens's ``HookedTransformer`` skips the
untouched prefix through a frozen KV cache and starts each pass at the patched layer); ``fast=False`` forces
this generic path, which is how the tests show both give the same numbers.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import Tensor

from interp_af.models.interventions import Intervention
from interp_af.models.metric import DecisionTokens, logit_diff
from interp_af.models.sites import SiteKey


@dataclass(frozen=True)
class Cell:
    """One patch: the site's activation at ``layer`` (``head`` for head_out, None = all heads) at ``positions``."""

    layer: int
    head: int | None
    positions: tuple[int, ...]


@dataclass(frozen=True)
class PatchRun:
    """Logit diff of every patched cell (``[C]``, float64), of the unpatched target run and of the source run;
    ``rows``: the cost in full-pass equivalents (rows x fraction of positions x fraction of layers run)."""

    values: Tensor
    target: float
    source: float
    rows: float
    path: str = "generic"     # which implementation ran ("generic" or a backend's fast path)


@torch.no_grad()
def patch_generic(handle: Any, site: str, target: Sequence[int], source: Sequence[int], cells: Sequence[Cell],
                  dt: DecisionTokens, batch_size: int = 64) -> PatchRun:
    """Full passes through ``handle.forward`` with one ``replace`` intervention per group of rows."""
    layers = sorted({c.layer for c in cells})
    keys = [SiteKey(site, L) for L in layers]
    out_s = handle.forward(handle.collate([list(source)]), capture=keys)
    out_t = handle.forward(handle.collate([list(target)]))
    ld_s = float(logit_diff(out_s.logits, dt)[0])
    ld_t = float(logit_diff(out_t.logits, dt)[0])
    rows = 2.0
    res = torch.empty(len(cells), dtype=torch.float64)
    for lo in range(0, len(cells), batch_size):
        chunk = list(range(lo, min(lo + batch_size, len(cells))))
        groups: dict[tuple[int, int | None, int], list[int]] = defaultdict(list)
        for r, i in enumerate(chunk):
            c = cells[i]
            groups[(c.layer, c.head, len(c.positions))].append(r)
        ivs = []
        for (L, head, _), members in groups.items():
            pos = torch.tensor([list(cells[chunk[r]].positions) for r in members])
            act = out_s.acts[SiteKey(site, L)][0]  # [T, d] or [T, H, dh]
            value = act[pos]
            if site == "head_out" and head is not None:
                value = value[..., head, :]
            ivs.append(Intervention(site=site, layer=L, op="replace", positions=pos, value=value,
                                    rows=torch.tensor(members), head=head))
        out = handle.forward(handle.collate([list(target)] * len(chunk)), interventions=ivs)
        res[lo:lo + len(chunk)] = logit_diff(out.logits, dt).double().cpu()
        rows += len(chunk)
    return PatchRun(res, ld_t, ld_s, rows)
