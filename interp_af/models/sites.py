"""Canonical activation sites.

A *site* names an activation independent of the backend: ``resid_pre`` / ``resid_post`` (the residual stream
entering / leaving block ``layer``), ``attn_out`` / ``mlp_out`` (what the attention / MLP sub-layer of block
``layer`` writes into the residual stream), and ``head_out`` (the per-head attention output before the output
projection, TransformerLens's ``hook_z``: ``[..., n_heads, d_head]``). Each backend maps these names to its own
hooks through one small table, so analyses never mention a backend's module paths.
"""

from __future__ import annotations

from dataclasses import dataclass

SITES: tuple[str, ...] = ("resid_pre", "resid_post", "attn_out", "mlp_out", "head_out")


@dataclass(frozen=True, order=True)
class SiteKey:
    """One activation: a canonical site at one layer (block index, 0-based)."""

    site: str
    layer: int

    def __str__(self) -> str:
        return f"{self.site}.{self.layer}"
