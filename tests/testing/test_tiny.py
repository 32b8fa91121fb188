"""The tiny-model factory builds loadable models whose tokenizers behave like their real families."""

import json

import pytest
import torch
import transformers as tf

from tests.conftest import ARCHS


@pytest.mark.parametrize("arch", ARCHS)
def test_tiny_model_loads_and_runs(tiny_models, arch):
    path = tiny_models[arch]
    tok = tf.AutoTokenizer.from_pretrained(path)
    model = tf.AutoModelForCausalLM.from_pretrained(path)
    ids = tok("<is_free_tier_user>true</is_free_tier_user>")["input_ids"]
    logits = model(torch.tensor([ids])).logits
    assert logits.shape == (1, len(ids), len(tok))
    assert model.config.model_type == {"llama": "llama", "qwen2": "qwen2", "gemma2": "gemma2", "gpt2": "gpt2"}[arch]
    assert json.loads((path / "tiny_spec.json").read_text())["arch"] == arch


def test_llama_tokenizer_reproduces_the_doubled_bos_trap(tiny_models):
    tok = tf.AutoTokenizer.from_pretrained(tiny_models["llama"])
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    ids = tok(text)["input_ids"]
    assert ids[0] == ids[1] == tok.bos_token_id  # what a naive renderer gets; the setting must avoid it
    assert tok(text, add_special_tokens=False)["input_ids"][1] != tok.bos_token_id


def test_gemma_template_folds_system_into_first_user_turn(tiny_models):
    tok = tf.AutoTokenizer.from_pretrained(tiny_models["gemma2"])
    msgs = [{"role": "system", "content": "SYS"}, {"role": "user", "content": "hi"}]
    text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert text == "<bos><start_of_turn>user\nSYS\n\nhi<end_of_turn>\n<start_of_turn>model\n"


def test_gpt2_has_no_chat_template(tiny_models):
    assert tf.AutoTokenizer.from_pretrained(tiny_models["gpt2"]).chat_template is None
