"""Twins stay correct under the pre-tokenisers of real families, not just GPT-2's byte-level regex.

- Llama 3's split regex lets one punctuation character join the following word (``>true`` can be one
  pre-token), so the cue token may carry the ``>`` of the tag;
- SentencePiece-style tokenizers (Gemma, Llama 2, Mistral) replace spaces with ``▁`` and have no byte-level
  pre-tokeniser; offsets must still map back to the original characters.
"""

import pytest
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from interp_af.setting.prompts import get_variant
from interp_af.setting.queries import benign_queries
from interp_af.setting.twins import make_twins
from interp_af.testing.tiny import CHAT_TEMPLATES

LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                r"\s*[\r\n]+|\s+(?!\S)|\s+")


def _corpus() -> list[str]:
    v = get_variant("default")
    qs = benign_queries()
    return [v.conversation(q, arm).system + "\n" + v.conversation(q, arm).user for q in qs for arm in v.arms] * 3


def _llama3_regex_tokenizer():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"]
    tok.train_from_iterator(_corpus(), trainers.BpeTrainer(vocab_size=2000, special_tokens=specials, show_progress=False,
                                                           initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>")
    fast.chat_template = CHAT_TEMPLATES["llama3"]
    return fast


def _sentencepiece_like_tokenizer():
    tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never", split=True)
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    specials = ["<unk>", "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"]
    alphabet = sorted(set("".join(_corpus()).replace(" ", "▁")))
    tok.train_from_iterator(_corpus(), trainers.BpeTrainer(vocab_size=2000, special_tokens=specials, show_progress=False,
                                                           initial_alphabet=alphabet))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", unk_token="<unk>")
    fast.chat_template = CHAT_TEMPLATES["gemma"]
    return fast


@pytest.mark.parametrize("build", [_llama3_regex_tokenizer, _sentencepiece_like_tokenizer], ids=["llama3-regex", "spm-like"])
def test_named_positions_under_real_pretokenizers(build):
    tok = build()
    twins = make_twins(tok, benign_queries(8), "default")
    for t in twins:
        for p, value in ((t.a, "true"), (t.b, "false")):
            cue = tok.decode(list(p.input_ids[p.positions["cue"]: p.positions["cue_end"] + 1]))
            assert value in cue  # may carry the tag's ">" when the tokenizer merged it
            assert tok.decode(list(p.input_ids[p.positions["prefill"]:])).replace("▁", " ").strip() == "<OUTPUT>"
            assert sum(i == tok.bos_token_id for i in p.input_ids) == 1 and p.input_ids[0] == tok.bos_token_id
            assert tok.decode(list(p.input_ids[p.positions["start_user"]:p.positions["end_user"] + 1])).startswith("<INPUT>")
        assert t.aligned or "lengths differ" in t.reason  # alignment is the tokenizer's property; explained if not


def test_llama3_regex_merges_tag_and_value_yet_twins_align():
    tok = _llama3_regex_tokenizer()
    for t in make_twins(tok, benign_queries(8), "default"):
        assert t.aligned, t.reason
        assert t.diff_positions and set(t.diff_positions) <= set(range(t.a.positions["cue"], t.a.positions["cue_end"] + 1))
