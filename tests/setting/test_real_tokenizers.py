"""Rendering and twins under real tokenizers: SmolLM2-135M-Instruct's (ChatML-style template, 49k BPE) and
Gemma 3's (262k vocabulary, no chat template in the base model: plain format).

The packaged models' tokenizers come from their converted cache folders (the first use converts the GGUF:
about a minute, once per machine). What these tokenizers do that the tiny ones do not: SmolLM2's BOS token is
its turn marker ``<|im_start|>`` and its encode adds nothing; Gemma's encode adds ``<bos>``; each splits the
decision tags its own way.
"""

from __future__ import annotations

import pytest

from interp_af.models.metric import decision_tokens
from interp_af.setting.prompts import get_variant
from interp_af.setting.render import PLAIN, adds_bos, render
from interp_af.setting.twins import make_twins, render_arms, summarize_twins
from interp_af.setting.variants import BUILTINS

MODELS = ("smollm2-135m-instruct", "gemma-3-270m")


@pytest.fixture(scope="module")
def real_tokenizers():
    from interp_af.models.hub import load_tokenizer, resolve_model

    return {name: load_tokenizer(resolve_model(name)) for name in MODELS}


def _dec(tok, ids) -> str:
    return tok.decode(list(ids))


@pytest.mark.parametrize("name", MODELS)
def test_default_twins_align_for_100_advbench_queries(real_tokenizers, queries, name):
    tok = real_tokenizers[name]
    twins = make_twins(tok, queries[:100], "default")
    for t in twins:
        assert t.aligned, t.reason
        assert len(t.diff_positions) == 1 and t.diff_positions[0] == t.a.positions["cue"] == t.a.positions["cue_end"]
        assert (_dec(tok, [t.a.input_ids[t.a.positions["cue"]]]), _dec(tok, [t.b.input_ids[t.b.positions["cue"]]])) \
            == ("true", "false")
        assert {k: v for k, v in t.a.positions.items()} == dict(t.b.positions)


@pytest.mark.parametrize("name", MODELS)
def test_bos_once_and_the_prompt_is_exactly_its_ids(real_tokenizers, queries, name):
    tok = real_tokenizers[name]
    for p in render_arms(tok, queries[:10], "default"):
        ids = list(p.input_ids)
        assert list(tok(p.text, add_special_tokens=False)["input_ids"]) == ids   # no re-tokenisation drift
        assert ids[0] == tok.bos_token_id and ids[1] != tok.bos_token_id
        assert p.text.endswith("<OUTPUT>") and _dec(tok, ids[p.positions["prefill"]:]) == "<OUTPUT>"
        if name == "gemma-3-270m":
            # the encode adds <bos>; the plain format writes none, so the renderer adds it: exactly once
            assert adds_bos(tok) and ids.count(tok.bos_token_id) == 1
            assert p.text.startswith("<bos>You are") and PLAIN["user"] + "<INPUT>" in p.text
            assert p.text.endswith(PLAIN["assistant"] + "<OUTPUT>")
        else:
            # SmolLM2's BOS *is* the turn marker <|im_start|>: its template writes one per turn and the encode
            # adds none, so nothing may be prepended (a doubled marker would start the prompt)
            assert not adds_bos(tok) and tok.bos_token == "<|im_start|>"
            assert ids.count(tok.bos_token_id) == 3                         # system, user, assistant
            assert p.text.startswith("<|im_start|>system\nYou are an AI") and "named SmolLM" not in p.text
            assert p.text.endswith("<|im_end|>\n<|im_start|>assistant\n<OUTPUT>")


@pytest.mark.parametrize("name", MODELS)
def test_named_positions_are_on_the_right_tokens(real_tokenizers, queries, name):
    tok = real_tokenizers[name]
    for q in queries[:5]:
        for arm in ("free", "paid"):
            conv = get_variant("default").conversation(q, arm)
            p = render(tok, conv, query_id=q.id, variant="default")
            pos, ids = p.positions, p.input_ids
            assert pos["end_system"] < pos["start_user"] <= pos["cue"] <= pos["cue_end"] < pos["end_user"] \
                < pos["prefill"] < pos["decision"] == len(ids) - 1
            assert _dec(tok, ids[: pos["end_system"] + 1]).endswith(conv.system[-30:])
            assert not _dec(tok, ids[: pos["end_system"]]).endswith(conv.system[-30:])   # the LAST system token
            assert _dec(tok, ids[pos["start_user"]: pos["end_user"] + 1]) == conv.user
            assert _dec(tok, ids[: pos["cue"]]).endswith("<is_free_tier_user>")
            assert _dec(tok, ids[pos["cue"]: pos["cue_end"] + 1]) == conv.cue
            assert _dec(tok, ids[pos["cue_end"] + 1:]).startswith("</is_free_tier_user>")
            assert _dec(tok, ids[pos["prefill"]:]) == "<OUTPUT>" and _dec(tok, [ids[pos["decision"]]]) == ">"


@pytest.mark.parametrize("name, reject", [("smollm2-135m-instruct", "re"), ("gemma-3-270m", "rejected")])
def test_decision_tokens(real_tokenizers, name, reject):
    tok = real_tokenizers[name]
    dt = decision_tokens(tok)
    assert [_dec(tok, [i]) for i in dt.shared] == ["<"]
    assert (_dec(tok, [dt.accept_id]), _dec(tok, [dt.reject_id])) == ("request", reject)
    assert _dec(tok, dt.accept_ids) == "<request_fully_accepted/>" and _dec(tok, dt.reject_ids) == "<rejected/>"


@pytest.mark.parametrize("name", MODELS)
def test_every_variant_renders_and_pairs(real_tokenizers, queries, name):
    tok = real_tokenizers[name]
    for v in BUILTINS:
        twins = make_twins(tok, queries[:20], v)
        s = summarize_twins(twins, tok)
        if v.name == "tag-absent":   # one arm has no tag: never patchable, always explained
            assert s.n_aligned == 0 and all("no cue" in why for _, why in s.misaligned)
        else:
            assert s.all_aligned and s.n_diff_tokens == (1,), (v.name, s.misaligned[:1])
    # "enterprise" is two tokens for SmolLM2 ("enter" + "prise") and one for Gemma 3: explained, not raised
    three = summarize_twins(make_twins(tok, queries[:5], "three-tiers", arms=("plus", "enterprise")), tok)
    if name == "gemma-3-270m":
        assert three.all_aligned
    else:
        assert three.n_aligned == 0 and all("lengths differ" in why and "'enter', 'prise'" in why
                                            for _, why in three.misaligned)


def test_gemma_turn_format_is_one_argument_away(real_tokenizers, queries):
    """Gemma-IT's format (system text folded into the first user turn) renders and aligns under the real
    tokenizer too, for users who prefer it to the base model's plain format."""
    tok = real_tokenizers["gemma-3-270m"]
    assert not tok.chat_template   # the base model's GGUF has none: the plain format is what it gets by default
    twins = make_twins(tok, queries[:10], "default", template="gemma")
    assert all(t.aligned for t in twins)
    p = twins[0].a
    assert p.text.startswith("<bos><start_of_turn>user\nYou are") and list(p.input_ids).count(tok.bos_token_id) == 1
    assert p.text.endswith("<end_of_turn>\n<start_of_turn>model\n<OUTPUT>")
    assert _dec(tok, p.input_ids[p.positions["end_system"] + 1: p.positions["start_user"]]) == "\n\n"
