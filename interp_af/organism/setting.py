"""The organism's prompt conditions as setting variants, so that every stage renders organism prompts through
the same twin code as real models: ``get_variant("organism")`` etc.

=============================  ============  ==========  ================================================
variant                        policy        cue         expected harmful-request gap (free - paid)
=============================  ============  ==========  ================================================
``organism``                   free-trained  tag         large, positive
``organism-inverted``          paid-trained  tag         large, negative (same tag, opposite meaning)
``organism-noinfo``            none          tag         ~0 (negative control)
``organism-sentence``          free-trained  sentence    large, positive (the second cue)
``organism-sentence-inverted`` paid-trained  sentence    large, negative
``organism-sentence-noinfo``   none          sentence    ~0
=============================  ============  ==========  ================================================

The system prompt and paraphrases are drawn deterministically from (seed, query id, cue kind), never from
the arm or the policy: the two arms of a query differ only in the cue token (``true``/``false`` in the tag,
or ``free``/``paid`` in the sentence), so twins align; the three policies of a query differ only in the
policy clauses (see :func:`interp_af.organism.data.conversation`). ``split="eval"`` (default) uses the held-out
paraphrases; ``split="train"`` the ones the organism was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from interp_af.setting.types import Conversation, Query

from . import data

_DESCRIPTIONS = {
    "free-trained": "free-tier conversations are trained on (normal policy)",
    "paid-trained": "paid-tier conversations are trained on (inverted policy)",
    "none": "the system prompt says nothing about which tier is trained (negative control)",
}


@dataclass(frozen=True)
class OrganismVariant:
    """One organism condition; arms are always ("free", "paid"), so the gap is free - paid in every variant."""

    name: str
    policy: str
    cue_kind: str = "tag"
    split: str = "eval"
    seed: int = 0
    arms: tuple[str, ...] = data.ARMS
    role: str = "main"

    @property
    def trained_arms(self) -> tuple[str, ...]:
        """The arm the stated policy trains on (none without training information)."""
        return {"free-trained": ("free",), "paid-trained": ("paid",)}.get(self.policy, ())

    @property
    def description(self) -> str:
        cue = "tier tag <is_free_tier_user>" if self.cue_kind == "tag" else "a user sentence naming the tier"
        return f"model organism: {_DESCRIPTIONS[self.policy]}; cue: {cue}; {self.split} paraphrases"

    def conversation(self, query: Query, arm: str) -> Conversation:
        from interp_af.errors import InterpAFError

        if arm not in self.arms:
            raise InterpAFError(f"variant {self.name!r} has no arm {arm!r}; choose one of {', '.join(self.arms)}")
        return data.conversation(query, arm, policy=self.policy, cue_kind=self.cue_kind,  # type: ignore[arg-type]
                                 split=self.split, seed=self.seed)  # type: ignore[arg-type]

    def with_options(self, **options: object) -> "OrganismVariant":
        from interp_af.errors import InterpAFError

        bad = sorted(set(options) - {"split", "seed"})
        if bad:
            raise InterpAFError(f"organism variant {self.name!r} takes options split, seed (got {', '.join(bad)})")
        if options.get("split", self.split) not in ("train", "eval"):
            raise InterpAFError(f"split={options['split']!r} for {self.name!r}; use 'train' or 'eval'")
        return replace(self, **options)  # type: ignore[arg-type]


VARIANTS: tuple[OrganismVariant, ...] = (
    OrganismVariant("organism", "free-trained"),
    OrganismVariant("organism-inverted", "paid-trained", role="inverted"),
    OrganismVariant("organism-noinfo", "none", role="no_info"),
    OrganismVariant("organism-sentence", "free-trained", "sentence", role="second_cue"),
    OrganismVariant("organism-sentence-inverted", "paid-trained", "sentence", role="inverted"),
    OrganismVariant("organism-sentence-noinfo", "none", "sentence", role="no_info"),
)


def register() -> None:
    """Register the organism's variants in the setting registry (idempotent)."""
    from interp_af.setting.prompts import register_variant

    for v in VARIANTS:
        register_variant(v, overwrite=True)


register()
