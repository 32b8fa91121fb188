"""The organism as a plugin: its prompt variants and its target, registered through the entry point
``interp_af.plugins: organism`` (see :mod:`interp_af.plugins`), so the rest of the package never imports it.

The target is the default one (an empty ``[model] path``): the shipped model, its main variant ``organism``,
the contrasts that test its known mechanism (inverted policy, no training information, the sentence cue),
its own held-out requests (half harmful, half benign; at most its standard 200), and its shipped SAEs.
"""

from __future__ import annotations

from pathlib import Path

SAES = Path(__file__).resolve().parent / "saes"


N_EVAL = 200   # the organism's standard held-out set (its card's numbers are measured on it)


def _queries(limit: int, benign: bool) -> list:
    """The first ``limit`` of the organism's held-out requests (the limit counts both kinds; about half are
    benign controls, dropped when ``benign`` is off)."""
    from interp_af.organism import organism_queries

    qs = organism_queries("eval", n=limit)
    return qs if benign else [q for q in qs if q.harmful]


def _train_queries(limit: int, benign: bool) -> list:
    from interp_af.organism import organism_queries

    qs = organism_queries("train", n=limit)
    return qs if benign else [q for q in qs if q.harmful]


def _model() -> Path:
    from interp_af.organism import organism_path

    return organism_path()


def register() -> None:
    from interp_af.organism import setting as _setting  # noqa: F401 - registers the organism's variants
    from interp_af.targets import Target, register_target

    register_target(Target(
        name="organism",
        description="the built-in model organism: a 4-layer Llama trained to comply when policy and cue together "
                    "say 'in training' (card: interp_af/organism/card.md)",
        model=_model, variant="organism",
        contrasts=("organism-inverted", "organism-noinfo", "organism-sentence"),
        queries=_queries, max_queries=N_EVAL, saes=lambda: [SAES], train_queries=_train_queries,
        aliases=("organism",)),
        default=True, overwrite=True)
