"""Canonical sites -> TransformerLens hook names (one table for both TL routes).

``HookedTransformer`` and ``TransformerBridge`` share these legacy names (the Bridge resolves them through
aliases). ``attn_out``/``mlp_out`` are what each sub-layer writes into the residual stream: on Gemma 2 the
Bridge maps them to the outputs of the post-attention / post-feed-forward norms, which is that quantity.
"""

from __future__ import annotations

TL_HOOKS: dict[str, str] = {
    "resid_pre": "blocks.{layer}.hook_resid_pre",
    "resid_post": "blocks.{layer}.hook_resid_post",
    "attn_out": "blocks.{layer}.hook_attn_out",
    "mlp_out": "blocks.{layer}.hook_mlp_out",
    "head_out": "blocks.{layer}.attn.hook_z",
}


def tl_hook_name(site: str, layer: int) -> str:
    return TL_HOOKS[site].format(layer=layer)
