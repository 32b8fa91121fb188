"""Applying interventions and gathering captures on one activation tensor, backend-independent.

Both backends hand us the full activation of one site in padded coordinates (``[B, T, d]``, or
``[B, T, n_heads, d_head]`` for ``head_out``) and take back the tensor that should flow downstream. Edits
are out of place (``clone`` + indexed assignment) so that they stay differentiable and never touch a
tensor another hook still holds.

With ``grad=True`` a capture at chosen positions is routed *through* the captured slice (the slice is
written back into the activation), so gradients of anything downstream land on the returned tensor's
``.grad``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from interp_af.models.batch import Batch
from interp_af.models.interventions import Intervention


def _rows(iv: Intervention, batch: Batch, device: torch.device) -> Tensor:
    if iv.rows is None:
        return torch.arange(batch.input_ids.shape[0], device=device)
    return iv.rows.to(device=device, dtype=torch.long)


def apply_interventions(act: Tensor, ivs: Sequence[Intervention], batch: Batch) -> Tensor:
    """Return ``act`` with every intervention of ``ivs`` (all for this site and layer) applied in order."""
    if not ivs:
        return act
    out = act.clone()
    for iv in ivs:
        rows = _rows(iv, batch, act.device)                              # [R]
        pos = iv.positions.to(device=act.device, dtype=torch.long)       # [R, P]
        cols = pos + batch.offsets.to(act.device)[rows][:, None]         # [R, P]
        r_idx = rows[:, None].expand_as(cols)
        if iv.head is not None:
            index: tuple = (r_idx, cols, iv.head)                        # -> [R, P, d_head]
        else:
            index = (r_idx, cols)                                        # -> [R, P, d] / [R, P, H, d_head]
        cur = out[index]
        value = iv.value.to(device=act.device, dtype=act.dtype)
        if iv.op == "replace":
            new = value.expand_as(cur)
        elif iv.op == "add":
            new = cur + value
        else:  # project_out: remove the component along a direction over the trailing dims
            trail = value.dim()
            flat = cur.flatten(start_dim=cur.dim() - trail) if trail > 1 else cur
            u = value.flatten() / value.flatten().norm().clamp_min(1e-12)
            flat = flat - (flat @ u)[..., None] * u
            new = flat.reshape(cur.shape)
        out[index] = new
    return out


def gather_columns(act: Tensor, batch: Batch, positions: Tensor | None) -> Tensor:
    """Activation at ``positions`` ([B, P] prompt coordinates) -> [B, P, ...]; None -> ``act`` itself."""
    if positions is None:
        return act
    cols = positions.to(device=act.device, dtype=torch.long) + batch.offsets.to(act.device)[:, None]
    b_idx = torch.arange(act.shape[0], device=act.device)[:, None].expand_as(cols)
    return act[b_idx, cols]


def capture_and_route(act: Tensor, batch: Batch, positions: Tensor | None, grad: bool) -> tuple[Tensor, Tensor]:
    """(tensor to keep, tensor to pass downstream). Without grad the kept tensor is a detached copy."""
    if not grad:
        return gather_columns(act, batch, positions).detach().clone(), act
    # weights are frozen, so the first captured site may not be in any graph yet: make it a leaf that is
    if positions is None:
        if act.requires_grad:
            act.retain_grad()
        else:
            act = act.detach().requires_grad_(True)
        return act, act
    kept = gather_columns(act, batch, positions)
    if kept.requires_grad:
        kept.retain_grad()
    else:
        kept = kept.detach().requires_grad_(True)
    cols = positions.to(device=act.device, dtype=torch.long) + batch.offsets.to(act.device)[:, None]
    b_idx = torch.arange(act.shape[0], device=act.device)[:, None].expand_as(cols)
    routed = act.clone()
    routed[b_idx, cols] = kept       # downstream now depends on `kept`, so kept.grad is filled by backward
    return kept, routed


def logit_columns(batch: Batch, positions: Tensor | None) -> Tensor | int:
    """What to pass as ``logits_to_keep`` so that only the needed positions reach the (huge) unembedding:
    padded columns ``[B, L]``, or 1 (the last column) by default."""
    if positions is None:
        return 1
    return positions.to(device=batch.input_ids.device, dtype=torch.long) + batch.offsets[:, None]
