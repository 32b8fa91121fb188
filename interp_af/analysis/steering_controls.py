"""Reading steering controls as a distribution: is the direction's effect beyond what any vector of its size does?

Adding a vector to the residual stream moves the metric whether or not the model uses that direction: it
changes norms, nudges every head's scores, and on a tiny logit gap such damage alone can "close" the gap by
any fraction. So a steering effect is read against many (20 by default) norm-matched random directions, as a
distribution, never by its maximum:

- ``closed``: fraction of the gap the direction closes when added to the steered arm (the normalised effect
  of :mod:`interp_af.analysis.effects`, logit units: 0 = unchanged, 1 = the steered arm now behaves like the
  other arm), with its query-bootstrap interval;
- ``random_closed``: the same number for each random direction; ``random_median``, ``random_p95`` (signed
  95th percentile) and ``random_abs_p95`` (95th percentile of the magnitude: randoms close and open the gap
  alike); ``percentile``: where the direction's closure falls among the randoms' (100 = above all of them;
  ties count one half);
- ``flipped_closed``: the closure of ``-direction`` on the same arm (a used direction pushes the other way,
  below 0, unless the decision is already saturated there), and ``flipped_closed_other_arm``: ``-direction``
  added to the *other* arm, which then closes the gap from the other side;
- the **noise floor** ``noise_floor_logit``: the 95th percentile of how far (in logits, mean over queries)
  the random directions move the steered arm. ``gap_logit`` is the unsteered logit-difference gap
  (arm a - arm b); a gap that is not above the noise floor cannot be told apart from what damage does, and
  then no closure means anything.

These are measurements; which verdict they support is decided elsewhere (the study's verdict rules).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from interp_af.errors import InterpAFError


@dataclass(frozen=True)
class SteerControls:
    """The direction beside its controls at one alpha, steering one arm (see the module docstring)."""

    alpha: float
    steered_arm: str
    closed: float
    closed_lo: float
    closed_hi: float
    flipped_closed: float | None
    flipped_closed_other_arm: float | None
    random_closed: tuple[float, ...]
    random_median: float
    random_p95: float
    random_abs_p95: float
    percentile: float
    shift_logit: float                      # mean change of the steered arm's logit difference (direction)
    random_shift_logit: tuple[float, ...]   # the same for each random direction
    noise_floor_logit: float                # 95th percentile of |random_shift_logit|
    gap_logit: float                        # unsteered mean logit difference, arm a - arm b

    @property
    def n_random(self) -> int:
        return len(self.random_closed)

    @property
    def above_noise_floor(self) -> bool:
        """Is the unsteered logit gap larger than what norm-matched random directions move the arm by?"""
        return bool(abs(self.gap_logit) > self.noise_floor_logit)

    @property
    def exceeds_random_p95(self) -> bool:
        """Does the direction close more of the gap than 95% of the random directions move it (in magnitude)?"""
        return bool(self.closed > self.random_abs_p95)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(n_random=self.n_random, above_noise_floor=self.above_noise_floor,
                 exceeds_random_p95=self.exceeds_random_p95)
        return d


def _cell(result: Any, name: str, a: int) -> bool:
    return name in result.controls and bool(result.ran()[result.controls.index(name), a])


def summarize_controls(result: Any, *, arm: int = 1, alpha: float | None = None) -> SteerControls:
    """:class:`SteerControls` of a :class:`~interp_af.analysis.steering.SteerResult` at ``alpha`` (default: its
    ``report_alpha``), steering ``arm`` (1 = arm b, the untrained arm, toward arm a)."""
    alpha = result.report_alpha if alpha is None else float(alpha)
    if alpha is None or alpha not in result.alphas:
        raise InterpAFError(f"alpha {alpha} was not swept (alphas {list(result.alphas)}); pick one of those")
    a = result.alphas.index(alpha)
    randoms = [c for c in result.controls if c.startswith("random") and _cell(result, c, a)]
    if not randoms:
        raise InterpAFError(f"no random control ran at alpha {alpha}; steer with n_random >= 1 and random_alphas "
                            f"including {alpha}")
    if "direction" not in result.controls:
        raise InterpAFError("this steering result has no 'direction' control")
    closed = result.closed(arm=arm)                              # [C, A]
    other = result.closed(arm=1 - arm)
    df = result.to_frame()
    row = df[(df.control == "direction") & (df.alpha == alpha) & (df.steered_arm == arm)].iloc[0]
    shift = (result.ld[:, a, arm, :] - result.base[arm][None]).double().mean(-1)   # [C]
    idx = {c: result.controls.index(c) for c in result.controls}
    r_closed = np.array([float(closed[idx[c], a]) for c in randoms])
    r_shift = np.array([float(shift[idx[c]]) for c in randoms])
    real = float(closed[idx["direction"], a])
    percentile = 100.0 * (float((r_closed < real).sum()) + 0.5 * float((r_closed == real).sum())) / len(r_closed)
    flipped = _cell(result, "flipped", a)
    gap = float((result.base[0] - result.base[1]).double().mean())
    return SteerControls(
        alpha=alpha, steered_arm=result.arms[arm], closed=real, closed_lo=float(row.closed_lo),
        closed_hi=float(row.closed_hi),
        flipped_closed=float(closed[idx["flipped"], a]) if flipped else None,
        flipped_closed_other_arm=float(other[idx["flipped"], a]) if flipped else None,
        random_closed=tuple(float(x) for x in r_closed), random_median=float(np.median(r_closed)),
        random_p95=float(np.percentile(r_closed, 95)), random_abs_p95=float(np.percentile(np.abs(r_closed), 95)),
        percentile=percentile, shift_logit=float(shift[idx["direction"]]),
        random_shift_logit=tuple(float(x) for x in r_shift),
        noise_floor_logit=float(np.percentile(np.abs(r_shift), 95)), gap_logit=gap,
    )


__all__ = ["SteerControls", "summarize_controls"]
