"""Context length: how many tokens a model can read, checked before the first forward pass.

A model has a fixed number of positions: learned position embeddings (GPT-2's ``n_positions``), or rotary
embeddings precomputed for ``n_ctx`` positions (TransformerLens), or a trained range beyond which RoPE models
run but read nonsense (Llama, Qwen, Gemma: ``max_position_embeddings``). Past it, some backends crash with a
raw ``IndexError`` deep inside the model and others silently compute garbage. The setting's prompts are long
(the default system prompt alone is several hundred tokens), so a short-context model meets this at once.

Two guards, both one-line errors:

- :func:`check_context` looks at every prompt *before* anything runs and names the longest one (query id,
  arm, variant), its length, the limit and the fix;
- every handle's ``forward`` refuses a batch longer than ``handle.n_ctx`` (set by each backend from
  :func:`config_context`, and for TransformerLens also from its own ``cfg.n_ctx``), so code that builds its
  own batches is covered too.
"""

from __future__ import annotations

from typing import Any, Sequence

from interp_af.errors import InterpAFError

_CONFIG_KEYS = ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length", "seq_length")

FIX = ("use a shorter prompt variant (--variant, or your own prompt file: --variant file:PATH, see `interp-af "
       "prompts --system-prompt`), or a model with a longer context")


def config_context(config: Any) -> int | None:
    """The position limit a ``transformers`` config declares (None when it declares none)."""
    text = getattr(config, "text_config", None) or config
    for key in _CONFIG_KEYS:
        value = getattr(text, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def min_limit(*limits: int | None) -> int | None:
    known = [int(x) for x in limits if isinstance(x, int) and x > 0]
    return min(known) if known else None


def context_limit(handle: Any) -> int | None:
    """The handle's context in tokens (None = unknown, nothing is checked)."""
    return getattr(handle, "n_ctx", None)


def _flatten(prompts: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    for p in prompts:
        if hasattr(p, "a") and hasattr(p, "b") and hasattr(p, "aligned"):   # a Twin: both arms
            out += [p.a, p.b]
        else:
            out.append(p)
    return out


def _describe(p: Any) -> str:
    if not hasattr(p, "input_ids"):
        return "a prompt"
    parts = [f"query {p.query_id}" if getattr(p, "query_id", "") else "a prompt"]
    if getattr(p, "arm", ""):
        parts.append(f"arm {p.arm}")
    if getattr(p, "variant", ""):
        parts.append(f"variant {p.variant}")
    return parts[0] + (f" ({', '.join(parts[1:])})" if len(parts) > 1 else "")


def check_context(handle: Any, prompts: Sequence[Any], *, extra_tokens: int = 0, limit: int | None = None) -> int:
    """Refuse, in one line, prompts that do not fit the model's context; return the longest length (+ extra).

    ``prompts``: RenderedPrompts, Twins (both arms count) or token-id sequences. ``extra_tokens``: what each
    run appends (the decision prefix the metric teacher-forces, generated tokens). ``limit`` overrides the
    handle's own.
    """
    items = _flatten(prompts)
    if not items:
        return 0
    longest = max(items, key=len)
    n = len(longest) + int(extra_tokens)
    limit = limit if limit is not None else context_limit(handle)
    if limit is not None and n > limit:
        extra = f" + {extra_tokens} appended token(s)" if extra_tokens else ""
        name = getattr(handle, "name", "") or "the model"
        raise InterpAFError(f"{_describe(longest)} is {len(longest)} tokens{extra}, longer than the context of "
                            f"{name} ({limit} tokens); {FIX}")
    return n


def check_batch_width(handle: Any, width: int, lengths: Sequence[int]) -> None:
    """The forward-pass guard: a batch ``width`` tokens wide must fit ``handle.n_ctx``."""
    limit = context_limit(handle)
    if limit is not None and width > limit:
        row = max(range(len(lengths)), key=lambda i: int(lengths[i])) if len(lengths) else 0
        raise InterpAFError(f"batch row {row} is {width} tokens, longer than the context of "
                            f"{getattr(handle, 'name', '') or 'the model'} ({limit} tokens); {FIX}")
