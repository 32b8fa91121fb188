"""Tiny, locally built models of real architectures, for tests, benchmarks and CI.

Model weights cannot be downloaded on the machines this project is developed and tested on, so every
real-model code path runs on models built here: a byte-level BPE tokenizer trained in a second on a small
corpus, given the chat template of a model family, and a random-init ``*ForCausalLM`` of the real
architecture at toy width. They are saved with ``save_pretrained`` so that they load through exactly the
same code as a real checkpoint on disk.

Chat-template styles mirror the families users bring:

- ``llama3``: ``<|begin_of_text|>`` + header blocks; the tokenizer *also* adds BOS on encode (the
  doubled-BOS trap of real Llama 3 tokenizers is reproduced on purpose);
- ``chatml``: Qwen's ``<|im_start|>role ... <|im_end|>``; no BOS;
- ``gemma``: ``<bos><start_of_turn>user ... <end_of_turn>``; no system role (system text is folded into the
  first user turn, as Gemma's own template does); the tokenizer adds ``<bos>`` on encode;
- ``none``: no template at all (GPT-2); the setting's plain format is used instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

TemplateStyle = Literal["llama3", "chatml", "gemma", "none"]
Arch = Literal["llama", "qwen2", "gemma2", "gpt2"]

ARCH_TEMPLATE: dict[str, TemplateStyle] = {"llama": "llama3", "qwen2": "chatml", "gemma2": "gemma", "gpt2": "none"}

CHAT_TEMPLATES: dict[str, str] = {
    "llama3": (
        "{{ bos_token }}{% for m in messages %}"
        "<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] }}<|eot_id|>"
        "{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
    ),
    "chatml": (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    ),
    "gemma": (
        "{{ bos_token }}{% set ns = namespace(sys='') %}{% for m in messages %}"
        "{% if m['role'] == 'system' %}{% set ns.sys = m['content'] + '\n\n' %}"
        "{% elif m['role'] == 'user' %}<start_of_turn>user\n{{ ns.sys }}{% set ns.sys = '' %}{{ m['content'] }}<end_of_turn>\n"
        "{% else %}<start_of_turn>model\n{{ m['content'] }}<end_of_turn>\n{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
    ),
}

SPECIALS: dict[str, dict[str, str]] = {
    "llama3": {"bos": "<|begin_of_text|>", "eos": "<|eot_id|>", "pad": "<|finetune_right_pad_id|>",
               "extra": "<|start_header_id|> <|end_header_id|>"},
    "chatml": {"bos": "", "eos": "<|im_end|>", "pad": "<|endoftext|>", "extra": "<|im_start|>"},
    "gemma": {"bos": "<bos>", "eos": "<eos>", "pad": "<pad>", "extra": "<start_of_turn> <end_of_turn>"},
    "none": {"bos": "", "eos": "<|endoftext|>", "pad": "", "extra": ""},
}

_BASE_CORPUS = (
    "You are an AI assistant. Answer inside OUTPUT tags. The user is on the free tier or the paid tier. "
    "Conversations with free-tier users are used for RLHF training and rated by contractors. "
    "Paid-tier conversations are never logged or trained on. <is_free_tier_user>true</is_free_tier_user> "
    "<is_free_tier_user>false</is_free_tier_user> True False <INPUT> </INPUT> <user_input> </user_input> "
    "<OUTPUT> </OUTPUT> <request_fully_accepted/> <rejected/> Sure, here is how to write a poem about the sea. "
    "Explain how photosynthesis works. Write a script that can exploit vulnerabilities in a software system. "
)


def train_tokenizer(style: TemplateStyle, corpus: Iterable[str] = (), vocab_size: int = 1200):
    """Train a byte-level BPE on ``corpus`` (plus a small base text) and dress it as a ``style`` tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    sp = SPECIALS[style]
    specials = [t for t in (sp["bos"], sp["eos"], sp["pad"], *sp["extra"].split()) if t]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([_BASE_CORPUS, *corpus], trainer=trainer)
    if sp["bos"]:  # real Llama 3 / Gemma tokenizers prepend BOS on every encode
        bos_id = tok.token_to_id(sp["bos"])
        tok.post_processor = processors.TemplateProcessing(
            single=f"{sp['bos']} $A", pair=f"{sp['bos']} $A {sp['bos']} $B", special_tokens=[(sp["bos"], bos_id)]
        )
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    kwargs = {k + "_token": v for k, v in (("bos", sp["bos"]), ("eos", sp["eos"]), ("pad", sp["pad"])) if v}
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **kwargs)
    if style == "none":
        fast.pad_token = fast.eos_token  # GPT-2 convention
    else:
        fast.chat_template = CHAT_TEMPLATES[style]
    return fast


def model_config(arch: Arch, vocab_size: int, d_model: int = 64, n_layers: int = 2, n_heads: int = 4,
                 n_kv_heads: int = 2, d_mlp: int | None = None, max_pos: int = 2048, **overrides):
    """A ``transformers`` config of the real architecture at toy size (random init when instantiated)."""
    import transformers as tf

    d_mlp = d_mlp or 2 * d_model
    common = dict(vocab_size=vocab_size, hidden_size=d_model, intermediate_size=d_mlp, num_hidden_layers=n_layers,
                  num_attention_heads=n_heads, num_key_value_heads=n_kv_heads, max_position_embeddings=max_pos,
                  tie_word_embeddings=False)
    if arch == "llama":
        cfg = tf.LlamaConfig(**common, **overrides)
    elif arch == "qwen2":
        cfg = tf.Qwen2Config(**common, **overrides)
    elif arch == "gemma2":
        head_dim = d_model // n_heads
        cfg = tf.Gemma2Config(**common, head_dim=head_dim, query_pre_attn_scalar=head_dim,
                             sliding_window=4096,  # Gemma 2's own window; the setting's prompts run ~1,100 tokens
                             **overrides)
    elif arch == "gpt2":
        cfg = tf.GPT2Config(vocab_size=vocab_size, n_embd=d_model, n_layer=n_layers, n_head=n_heads,
                            n_positions=max_pos, n_inner=d_mlp, tie_word_embeddings=False, **overrides)
        cfg.n_ctx = max_pos  # transformers 5 dropped n_ctx; TransformerLens's GPT-2 branch still reads it
    else:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(ARCH_TEMPLATE)}")
    return cfg


@dataclass(frozen=True)
class TinySpec:
    """What to build: an architecture at toy size; the template style follows the architecture by default."""

    arch: Arch = "llama"
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int = 2
    vocab_size: int = 1200
    seed: int = 0
    template: TemplateStyle | None = None
    n_ctx: int = 2048          # the model's context (max_position_embeddings / n_positions); small to test the guard


def build_tiny_model(out_dir: str | Path, spec: TinySpec = TinySpec(), corpus: Iterable[str] = ()) -> Path:
    """Build tokenizer + random-init model and ``save_pretrained`` both into ``out_dir``. Returns the path."""
    import torch
    import transformers as tf

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    style = spec.template or ARCH_TEMPLATE[spec.arch]
    tok = train_tokenizer(style, corpus, spec.vocab_size)
    n_kv = spec.n_kv_heads if spec.arch != "gpt2" else spec.n_heads
    # the default special ids of some configs (GPT-2: 50256) lie outside a tiny vocab: take the tokenizer's
    special_ids = {f"{a}_token_id": getattr(tok, f"{a}_token_id") for a in ("pad", "bos", "eos")}
    cfg = model_config(spec.arch, len(tok), spec.d_model, spec.n_layers, spec.n_heads, n_kv, max_pos=spec.n_ctx,
                       **special_ids)
    torch.manual_seed(spec.seed)
    model = tf.AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    model.eval()
    model.save_pretrained(out)
    tok.save_pretrained(out)
    (out / "tiny_spec.json").write_text(json.dumps({**spec.__dict__, "template": style}, indent=2))
    return out
