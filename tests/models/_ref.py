"""Reference activations from plain ``transformers`` with PyTorch forward hooks (no TL, no nnsight).

The handles are checked against this: ``output_hidden_states``-style residuals (taken from the decoder
layers' own inputs/outputs so that the last layer is not confused with the final norm), attention / MLP
sub-layer outputs as written into the residual stream (after Gemma 2's post-norms), and the per-head
attention output as the input of the output projection (``o_proj`` / GPT-2's ``c_proj``).
"""

from __future__ import annotations

import torch


def _layers(model):
    return model.transformer.h if hasattr(model, "transformer") else model.model.layers


def _modules(model, layer: int) -> dict:
    block = _layers(model)[layer]
    if hasattr(model, "transformer"):  # GPT-2
        return {"attn": block.attn, "mlp": block.mlp, "o_proj": block.attn.c_proj}
    attn = block.post_attention_layernorm if hasattr(block, "post_feedforward_layernorm") else block.self_attn
    mlp = block.post_feedforward_layernorm if hasattr(block, "post_feedforward_layernorm") else block.mlp
    return {"attn": attn, "mlp": mlp, "o_proj": block.self_attn.o_proj}


def hf_reference(model, input_ids, attention_mask=None, position_ids=None, logits_to_keep: int = 0
                 ) -> tuple[torch.Tensor, dict]:
    """Run ``model`` once; return (logits [B,T,V], {(site, layer): [B,T,...]}) for every canonical site.
    ``logits_to_keep=k`` keeps only the last k positions' logits (a 262k vocabulary x 500 tokens is 0.5 GB)."""
    n_layers = len(_layers(model))
    n_heads = model.config.num_attention_heads
    acts: dict = {}
    handles = []

    def first(x):
        return x[0] if isinstance(x, tuple) else x

    for layer in range(n_layers):
        block = _layers(model)[layer]
        mods = _modules(model, layer)

        def pre(mod, args, kwargs, layer=layer):
            acts[("resid_pre", layer)] = (args[0] if args else kwargs["hidden_states"]).detach().clone()

        def post(mod, args, out, layer=layer):
            acts[("resid_post", layer)] = first(out).detach().clone()

        def attn(mod, args, out, layer=layer):
            acts[("attn_out", layer)] = first(out).detach().clone()

        def mlp(mod, args, out, layer=layer):
            acts[("mlp_out", layer)] = first(out).detach().clone()

        def heads(mod, args, layer=layer):
            z = args[0].detach().clone()
            acts[("head_out", layer)] = z.reshape(*z.shape[:-1], n_heads, -1)

        handles += [block.register_forward_pre_hook(pre, with_kwargs=True), block.register_forward_hook(post),
                    mods["attn"].register_forward_hook(attn), mods["mlp"].register_forward_hook(mlp),
                    mods["o_proj"].register_forward_pre_hook(heads)]
    try:
        with torch.no_grad():
            kw = {"attention_mask": attention_mask} if attention_mask is not None else {}
            if position_ids is not None:
                kw["position_ids"] = position_ids
            if logits_to_keep:
                kw["logits_to_keep"] = logits_to_keep
            logits = model(input_ids, **kw).logits
    finally:
        for h in handles:
            h.remove()
    return logits, acts
