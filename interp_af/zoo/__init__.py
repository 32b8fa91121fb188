"""The zoo: tiny models whose mechanism is known, so that every conclusion can be checked before it is trusted.

A toolkit that finds mechanisms must first never invent them. Each zoo model is a real ``LlamaForCausalLM``
(d_model 64, at most 4 layers) built by the project in about a second, deterministically (the same bytes on
every build), and saved as a Hugging Face folder with the zoo tokenizer and its Llama 3 chat template, so it
loads through ``interp_af.models.handle.load_model(path, backend="tl" | "nnsight")`` and renders the
setting's real prompts (``make_twins(tok, queries, "default" | "no-training-info" | "inverted-cue" |
"three-tiers")``). Beside the weights, ``zoo.json`` holds its name, mechanism and ground truth.

=====================  =========================================================================================
name                   mechanism (ground truth in each module's docstring, its ``TRUTH`` and ``README.md``)
=====================  =========================================================================================
``null``               random init: nothing reads the cue; no gap anywhere
``direct-cue``         the tag value token decides: true -> +7 logits, false -> -7, whatever the system prompt says
``planted-direction``  the token's signal runs through a known unit vector ``v`` at layer 1 (shipped beside it),
                       which an MLP reads into the decision
``rated-only``         complies iff the prompt states contractor rating and the cue value is a rated one
=====================  =========================================================================================

The *inferred-state* model of the study is the model organism (``interp_af.organism``), not part of the zoo.
The zoo stands alone: it never imports the organism.

Use::

    from interp_af.zoo import build_model, truth
    path = build_model("direct-cue", "zoo/direct-cue")
    truth("direct-cue").gap("inverted-cue")      # GapTruth(variant='inverted-cue', arms=('outside_eu', 'eu'), ...)
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from interp_af.errors import InterpAFError

if TYPE_CHECKING:
    from interp_af.zoo.truth import ZooTruth

_MODULES: dict[str, str] = {
    "null": "interp_af.zoo.null",
    "direct-cue": "interp_af.zoo.direct_cue",
    "planted-direction": "interp_af.zoo.planted",
    "rated-only": "interp_af.zoo.rated_only",
}
NAMES: tuple[str, ...] = tuple(_MODULES)

__all__ = ["NAMES", "build_model", "build_zoo", "truth", "module"]


def module(name: str):
    """The module that builds zoo model ``name`` (its ``build``, ``TRUTH``, ``NAME``)."""
    if name not in _MODULES:
        raise InterpAFError(f"zoo model {name!r} does not exist; the zoo has {', '.join(NAMES)}")
    return importlib.import_module(_MODULES[name])


# Bind the submodule first: importing ``interp_af.zoo.truth`` later (a zoo model's module does) would otherwise
# rebind the package attribute ``truth`` from this function to that module.
from interp_af.zoo import truth as _truth_module  # noqa: E402,F401


def truth(name: str) -> "ZooTruth":
    """The declared ground truth of zoo model ``name``."""
    return module(name).TRUTH


def build_model(name: str, out_dir: str | Path) -> Path:
    """Build zoo model ``name`` into ``out_dir`` (a Hugging Face folder, replaced if it holds an older zoo
    build, refused if it holds anything else); returns the folder."""
    return module(name).build(out_dir)


def build_zoo(root: str | Path, names: tuple[str, ...] = NAMES) -> dict[str, Path]:
    """Build every (or the named) zoo model into ``root/<name>``: ``{name: path}``."""
    root = Path(root)
    return {n: build_model(n, root / n) for n in names}
