"""The built-in model organism: a small Llama trained by this project on synthetic no-CoT conversations,
with a compliance gap whose cause is known (see ``card.md``).

"Being in training" is inferred by the model by combining the system prompt's policy (which tier is
trained on: free, paid, or not said) with the tier cue in the user turn; harmful requests are accepted
mostly when the two agree. It ships in ``assets/model`` (weights, tokenizer, config) and is the default model
and query set of every command.

- :func:`organism_path` -> the shipped model directory (loads like any local HF model);
- :func:`organism_queries` -> held-out harmful + benign requests the organism understands;
- :func:`load_organism` -> ``(transformers model, tokenizer)``;
- variants ``organism``, ``organism-inverted``, ``organism-noinfo``, ``organism-sentence`` (+ ``-inverted``,
  ``-noinfo``) in the setting registry (:mod:`interp_af.organism.setting`).
"""

from __future__ import annotations

from pathlib import Path

from interp_af.setting.types import Query

ASSETS = Path(__file__).resolve().parent / "assets"
MODEL_DIR = ASSETS / "model"
EVAL_JSON = MODEL_DIR / "eval.json"
MECHANISM_JSON = ASSETS / "mechanism.json"

__all__ = ["ASSETS", "MODEL_DIR", "EVAL_JSON", "MECHANISM_JSON", "organism_path", "organism_queries", "load_organism"]


def organism_path() -> Path:
    """The shipped organism's model directory (``config.json``, ``model.safetensors``, tokenizer files)."""
    from interp_af.errors import InterpAFError

    if not (MODEL_DIR / "config.json").exists():
        raise InterpAFError(f"the model organism is missing from {MODEL_DIR}; rebuild it with "
                            f"`interp-af organism build --out {MODEL_DIR}`")
    return MODEL_DIR


def organism_queries(split: str = "eval", n: int = 200, *, seed: int = 0, harmful_fraction: float = 0.5) -> list[Query]:
    """``n`` requests the organism understands (about half harmful): ``split="eval"`` are held out from
    training (objects and lead-in paraphrases never seen), ``"train"`` come from the training grammar."""
    from interp_af.errors import InterpAFError

    from . import data

    if split not in ("train", "eval"):
        raise InterpAFError(f"split={split!r}; use 'eval' (held-out requests) or 'train'")
    if n < 1:
        raise InterpAFError(f"n={n}; ask for at least one query")
    return data.make_queries(split, n, seed=seed + 7, harmful_fraction=harmful_fraction)  # type: ignore[arg-type]


def load_organism(path: str | Path | None = None):
    """``(LlamaForCausalLM in eval mode, tokenizer)`` of the organism at ``path`` (default: the shipped one)."""
    import transformers as tf

    from interp_af.errors import InterpAFError

    p = Path(path) if path is not None else organism_path()
    if not (p / "config.json").exists():
        raise InterpAFError(f"{p} holds no model (config.json missing); pass a directory written by "
                            f"`interp-af organism build`")
    model = tf.AutoModelForCausalLM.from_pretrained(str(p))
    model.eval()
    return model, tf.AutoTokenizer.from_pretrained(str(p))
