"""Reference activations from plain ``transformers``, one prompt at a time (no padding, no TL, no nnsight).

``output_hidden_states`` gives the residual stream (``hidden_states[l]`` enters block ``l``; the last entry is
after the final norm, so the last block's output is read from a forward hook on the block instead). Attention
and MLP sub-layer outputs come from forward hooks on the modules whose output is added to the residual stream
(after Gemma 2's post-norms), and the per-head output from the input of the attention output projection.
"""

from __future__ import annotations

import torch


def _blocks(model):
    return model.transformer.h if hasattr(model, "transformer") else model.model.layers


def _sub(model, block):
    if hasattr(model, "transformer"):  # GPT-2
        return block.attn, block.mlp, block.attn.c_proj
    if hasattr(block, "post_feedforward_layernorm"):  # Gemma 2
        return block.post_attention_layernorm, block.post_feedforward_layernorm, block.self_attn.o_proj
    return block.self_attn, block.mlp, block.self_attn.o_proj


@torch.no_grad()
def reference(model, ids: list[int], positions: list[int]) -> tuple[torch.Tensor, dict]:
    """(last-position logits [vocab], {(site, layer): [P, ...] at ``positions``}) for one unpadded prompt."""
    got: dict = {}
    hooks = []
    n_heads = model.config.num_attention_heads
    first = lambda x: x[0] if isinstance(x, tuple) else x  # noqa: E731
    for layer, block in enumerate(_blocks(model)):
        attn, mlp, o_proj = _sub(model, block)
        hooks += [
            block.register_forward_hook(lambda m, a, o, layer=layer: got.__setitem__(("resid_post", layer), first(o)[0])),
            attn.register_forward_hook(lambda m, a, o, layer=layer: got.__setitem__(("attn_out", layer), first(o)[0])),
            mlp.register_forward_hook(lambda m, a, o, layer=layer: got.__setitem__(("mlp_out", layer), first(o)[0])),
            o_proj.register_forward_pre_hook(
                lambda m, a, layer=layer: got.__setitem__(("head_out", layer), a[0][0].reshape(a[0].shape[1], n_heads, -1))),
        ]
    try:
        out = model(torch.tensor([ids]), output_hidden_states=True)
    finally:
        for h in hooks:
            h.remove()
    hs = out.hidden_states
    n = len(_blocks(model))
    for layer in range(n):
        got[("resid_pre", layer)] = hs[layer][0]
        if layer < n - 1:  # hidden_states agree with the block hook wherever they are not post-norm
            torch.testing.assert_close(hs[layer + 1][0], got[("resid_post", layer)], rtol=0, atol=0)
    idx = torch.tensor(positions)
    return out.logits[0, -1], {k: v[idx] for k, v in got.items()}
