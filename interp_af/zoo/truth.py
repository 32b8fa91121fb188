"""What each zoo model's analyses must find, declared before anything is measured on it.

A :class:`ZooTruth` is the ground truth of one zoo model, written from its wiring (not from a run): the
compliance and logit-difference gap it has between two arms of a variant (:class:`GapTruth`), where a
within-forward-pass direction carries the tier signal and what steering along it does
(:class:`DirectionTruth`), and whether a probe of ``in_training`` trained under the default policy transfers
to the inverted policy. Tests measure each model with the toolkit's analyses and compare with these
numbers; the lead's verdict tables compare with the prose (``README.md`` beside this file).

Arms are named as in the variant, first minus second; each built-in variant lists its *trained* arm first
(for ``inverted-cue`` that is ``outside_eu``, whose tag shows ``false``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class GapTruth:
    """The gap ``arms[0] - arms[1]`` under ``variant``: in mean logit difference (``logit_gap``, to within
    ``tol``) and in compliance (fraction of queries whose logit difference is positive; exact)."""

    variant: str
    arms: tuple[str, str]
    logit_gap: float
    compliance_gap: float
    tol: float = 1.0


@dataclass(frozen=True)
class DirectionTruth:
    """A direction in the residual stream that carries the tier signal at the metric position.

    ``site``/``layer``: where the planted or copied signal sits; ``steer_closes``: the fraction of the gap
    that adding the arms' mean difference (alpha = 1) to the untrained arm closes there; ``flipped_closes``:
    the same for the flipped direction (negative: it pushes the arm further away; ~0 where the decision is
    already saturated on that side); ``cue_cosine``: the cosine of the class (mean-difference) direction at
    that site with the cue tokens' embedding difference (None: not pinned down by the wiring)."""

    site: str
    layer: int
    steer_closes: float
    flipped_closes: float | None = None
    cue_cosine: float | None = None
    tol: float = 0.1


@dataclass(frozen=True)
class ZooTruth:
    """One zoo model's ground truth (see the module docstring)."""

    name: str
    mechanism: str
    gaps: tuple[GapTruth, ...]
    direction: DirectionTruth | None      # None: no direction carries a gap (there is none)
    transfer_flips: bool | None           # in_training probe, default -> inverted-cue: flips (AUROC < 0.5)?
    notes: tuple[str, ...] = field(default_factory=tuple)

    def gap(self, variant: str, arms: tuple[str, str] | None = None) -> GapTruth:
        for g in self.gaps:
            if g.variant == variant and (arms is None or g.arms == tuple(arms)):
                return g
        raise KeyError(f"{self.name}: no declared gap for {variant} {arms or ''}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
