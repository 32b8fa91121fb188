"""Handles around objects the user already holds.

Researchers arrive with a model loaded their own way: a TransformerLens ``HookedTransformer`` (or sae-lens's
``HookedSAETransformer``, a subclass), a ``TransformerBridge``, an nnsight ``LanguageModel`` /
``TransformersModel``, or a plain ``transformers`` model plus its tokenizer. :func:`as_handle` puts any of
them behind the one :class:`~interp_af.models.handle.ModelHandle` interface without copying weights, so every
analysis accepts them; a path, Hub id or target name is loaded with :func:`~interp_af.models.handle.load_model`.

Numerics are the object's own: a ``HookedTransformer`` built by ``from_pretrained`` has its layer norms
folded and its weights centred, which shifts logits by a per-position constant (the logit *difference* the
metric reads is unchanged) and changes the residual stream (SAEs trained on raw Hugging Face activations fit
it worse; load from a path for raw numerics).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from interp_af.errors import InterpAFError


def _is(obj: Any, module: str, name: str) -> bool:
    """isinstance by class path, without importing the (heavy) library when the object cannot be from it."""
    for cls in type(obj).__mro__:
        if cls.__name__ == name and cls.__module__.startswith(module):
            return True
    return False


def _prepare_tokenizer(tok: Any) -> Any:
    if tok is None:
        raise InterpAFError("the model object has no tokenizer; pass tokenizer=... (as_handle(model, tokenizer=tok))")
    if getattr(tok, "pad_token_id", None) is None and getattr(tok, "eos_token", None) is not None:
        tok.pad_token = tok.eos_token  # only used for left padding, which the attention mask hides
    return tok


def as_handle(obj: Any, *, tokenizer: Any = None, name: str | None = None, **load_options: Any) -> Any:
    """A :class:`~interp_af.models.handle.ModelHandle` for ``obj`` (a handle is returned as is)."""
    from interp_af.models.handle import BaseHandle, load_model

    if isinstance(obj, BaseHandle):
        return obj
    if isinstance(obj, (str, Path)):
        return load_model(obj, **load_options)
    if _is(obj, "transformer_lens", "HookedTransformer"):
        from interp_af.models.tl import TLHandle

        tok = _prepare_tokenizer(tokenizer or obj.tokenizer)
        return TLHandle(obj, tok, name=name or obj.cfg.model_name, route="hooked",
                        model_type=str(getattr(obj.cfg, "original_architecture", "") or ""),
                        device=str(obj.cfg.device))
    if _is(obj, "transformer_lens", "TransformerBridge"):
        from interp_af.models.tl import TLHandle

        tok = _prepare_tokenizer(tokenizer or obj.tokenizer)
        hf = getattr(obj, "original_model", None)
        model_type = getattr(getattr(hf, "config", None), "model_type", "") or ""
        return TLHandle(obj, tok, name=name or str(getattr(obj.cfg, "model_name", "bridge")), route="bridge",
                        model_type=model_type, device=str(getattr(obj.cfg, "device", "cpu")))
    if _is(obj, "nnsight", "LanguageModel") or _is(obj, "nnsight", "TransformersModel"):
        from interp_af.models.nn import NNHandle

        tok = _prepare_tokenizer(tokenizer or obj.tokenizer)
        label = name or str(getattr(obj.config, "_name_or_path", "") or type(obj).__name__)
        return NNHandle(obj, tok, name=label)
    if _is(obj, "transformers", "PreTrainedModel"):
        from nnsight.modeling.transformers import TransformersModel

        from interp_af.models.nn import NNHandle

        tok = _prepare_tokenizer(tokenizer)
        obj.eval()
        obj.requires_grad_(False)
        return NNHandle(TransformersModel(obj, tokenizer=tok, task="text-generation"), tok,
                        name=name or str(getattr(obj.config, "_name_or_path", "") or type(obj).__name__))
    if all(hasattr(obj, a) for a in ("forward", "tokenizer", "n_layers")):
        return obj  # anything else that implements the ModelHandle protocol (e.g. a test double)
    raise InterpAFError(f"cannot use a {type(obj).__module__}.{type(obj).__name__} as a model; pass a path, a Hub "
                        "id, a target name, a HookedTransformer, a TransformerBridge, an nnsight LanguageModel, or a "
                        "transformers model with tokenizer=")
