"""Canonical sites -> module paths of plain ``transformers`` models (the nnsight backend's table).

Each entry says which module to read and whether the activation is its input or its output (and which
element when the output is a tuple). ``head_out`` is the input of the attention output projection
(``o_proj``; GPT-2's ``attn.c_proj``), reshaped to ``[..., n_heads, d_head]``: TransformerLens's ``hook_z``.
Families differ only in a few names, so the table is keyed by family; unknown Llama-like families
(Mistral, Qwen2/3, Llama 3, ...) use the "llama" row.

Order matters for nnsight: inside one layer modules must be visited in execution order; ``SITE_ORDER``
lists them that way.
"""

from __future__ import annotations

from dataclasses import dataclass

# execution order of the sites inside one block
SITE_ORDER: tuple[str, ...] = ("resid_pre", "head_out", "attn_out", "mlp_out", "resid_post")


@dataclass(frozen=True)
class ModuleSite:
    path: str          # relative to the layer module ("" = the layer itself)
    kind: str          # "input" | "output"
    tuple_index: int | None = None   # output is a tuple: element to use


@dataclass(frozen=True)
class FamilyTable:
    layers: str                       # path of the ModuleList of blocks from the CausalLM root
    sites: dict[str, ModuleSite]


_LLAMA = FamilyTable("model.layers", {
    "resid_pre": ModuleSite("", "input"),
    "resid_post": ModuleSite("", "output"),
    "attn_out": ModuleSite("self_attn", "output", 0),
    "mlp_out": ModuleSite("mlp", "output"),
    "head_out": ModuleSite("self_attn.o_proj", "input"),
})
# Gemma 2/3 normalise each sub-layer's output before adding it to the residual stream
_GEMMA2 = FamilyTable("model.layers", {
    **_LLAMA.sites,
    "attn_out": ModuleSite("post_attention_layernorm", "output"),
    "mlp_out": ModuleSite("post_feedforward_layernorm", "output"),
})
_GPT2 = FamilyTable("transformer.h", {
    "resid_pre": ModuleSite("", "input"),
    "resid_post": ModuleSite("", "output"),
    "attn_out": ModuleSite("attn", "output", 0),
    "mlp_out": ModuleSite("mlp", "output"),
    "head_out": ModuleSite("attn.c_proj", "input"),
})

FAMILIES: dict[str, FamilyTable] = {"llama": _LLAMA, "gemma2": _GEMMA2, "gpt2": _GPT2}
_MODEL_TYPE_FAMILY = {"gemma2": "gemma2", "gemma3_text": "gemma2", "gemma3": "gemma2", "gpt2": "gpt2"}


def family_table(model_type: str) -> FamilyTable:
    return FAMILIES[_MODEL_TYPE_FAMILY.get(model_type, "llama")]
