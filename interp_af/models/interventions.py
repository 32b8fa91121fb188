"""Interventions: the one vocabulary of patching, steering, ablation and SAE-feature edits.

An :class:`Intervention` edits one site at one layer, at chosen positions of chosen batch rows, by one of
three operations: ``replace`` (activation patching), ``add`` (steering), ``project_out`` (directional
ablation). Every backend applies a list of them inside a single forward pass, so a patching sweep is a batch
of rows that each carry their own intervention.
"""

from __future__ import annotations

from dataclasses import dataclass

from jaxtyping import Float, Int
from torch import Tensor

OPS: tuple[str, ...] = ("replace", "add", "project_out")


@dataclass(frozen=True)
class Intervention:
    """Edit ``site`` at ``layer`` for rows ``rows`` (None = all) at ``positions`` (prompt coordinates).

    ``value``: for ``replace`` the new activations ``[R, P, d]`` (``[R, P, n_heads, d_head]`` for ``head_out``,
    or ``[R, P, d_head]`` with ``head`` set); for ``add`` anything broadcastable to ``[R, P, d]``; for
    ``project_out`` a direction ``[d]`` (normalised by the backend).
    """

    site: str
    layer: int
    op: str
    positions: Int[Tensor, "rows p"]
    value: Float[Tensor, "..."]
    rows: Int[Tensor, " rows"] | None = None
    head: int | None = None

    def __post_init__(self) -> None:
        if self.op not in OPS:
            from interp_af.errors import InterpAFError

            raise InterpAFError(f"intervention op {self.op!r} is unknown; use one of {', '.join(OPS)}")
