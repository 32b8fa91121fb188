"""The compliance metric: decision tokens, logit difference, prefix log-probabilities, generation check."""

from __future__ import annotations

import pytest
import torch

from interp_af.errors import InterpAFError
from interp_af.models.handle import ForwardOut
from interp_af.models.metric import (
    DecisionTokens,
    completion_logprob,
    decision_tokens,
    generate_check,
    logit_diff,
    metric_inputs,
    score_logit_diff,
    two_way_prob,
)
from interp_af.setting.types import ACCEPT, REJECT
from tests.models.conftest import random_prompts


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gemma2", "gpt2"])
def test_decision_tokens_split_at_first_divergence(arch, handles):
    tok = handles(arch, "nnsight").tokenizer
    dt = decision_tokens(tok)
    a = tok(ACCEPT, add_special_tokens=False)["input_ids"]
    r = tok(REJECT, add_special_tokens=False)["input_ids"]
    i = len(dt.shared)
    assert list(dt.shared) == a[:i] == r[:i]
    assert (dt.accept_id, dt.reject_id) == (a[i], r[i]) and a[i] != r[i]
    assert tok.bos_token_id not in (dt.accept_id, dt.reject_id, *dt.shared) or tok.bos_token_id is None
    assert metric_inputs([1, 2], dt) == [1, 2, *dt.shared]


def test_identical_prefixes_are_rejected(handles):
    tok = handles("llama", "nnsight").tokenizer
    with pytest.raises(InterpAFError, match="tokenise identically"):
        decision_tokens(tok, ACCEPT, ACCEPT)
    with pytest.raises(InterpAFError, match="prefix of the other"):
        decision_tokens(tok, "<rejected", "<rejected/>")


@pytest.mark.parametrize("backend", ["tl", "nnsight"])
def test_forward_metric_equals_hand_computed(backend, handles, hf_models):
    h = handles("gpt2", backend)
    dt = decision_tokens(h.tokenizer)
    prompts = random_prompts((9, 5, 7))
    got = score_logit_diff(h, prompts, dt, batch_size=2, progress=False)
    hf = hf_models("gpt2")
    for i, p in enumerate(prompts):
        with torch.no_grad():
            last = hf(torch.tensor([p + list(dt.shared)])).logits[0, -1]
        assert got[i].item() == pytest.approx((last[dt.accept_id] - last[dt.reject_id]).item(), abs=1e-4)
        assert two_way_prob(last[None], dt).item() == pytest.approx(torch.sigmoid(got[i]).item(), abs=1e-5)
        full = {}
        for name, comp in (("a", dt.accept_ids), ("r", dt.reject_ids)):
            with torch.no_grad():
                lp = torch.log_softmax(hf(torch.tensor([p + list(comp)])).logits[0], -1)
            full[name] = sum(lp[len(p) - 1 + k, t].item() for k, t in enumerate(comp))
        assert completion_logprob(h, [p], dt.accept_ids).item() == pytest.approx(full["a"], abs=1e-4)
        assert completion_logprob(h, [p], dt.reject_ids).item() == pytest.approx(full["r"], abs=1e-4)
    # batched log-probs equal the one-by-one values
    batched = completion_logprob(h, prompts, dt.accept_ids, batch_size=3)
    single = torch.cat([completion_logprob(h, [p], dt.accept_ids) for p in prompts])
    torch.testing.assert_close(batched, single, atol=1e-4, rtol=0)


def test_logit_diff_shapes():
    dt = DecisionTokens((), 3, 5)
    logits = torch.zeros(2, 1, 8)
    logits[0, 0, 3], logits[1, 0, 5] = 2.0, 1.5
    assert logit_diff(logits, dt).tolist() == [2.0, -1.5]
    assert logit_diff(logits[:, 0], dt).tolist() == [2.0, -1.5]


class ScriptedHandle:
    """A fake handle whose next-token logits follow a script per row (tests the decoding loop only)."""

    def __init__(self, tokenizer, scripts: list[list[int]]):
        self.tokenizer, self.scripts, self.prompt_lens = tokenizer, scripts, None

    def collate(self, rows):
        from interp_af.models.batch import collate

        if self.prompt_lens is None:
            self.prompt_lens = [len(r) for r in rows]
        return collate(rows, 0)

    def forward(self, batch, **_):
        step = int(batch.lengths[0]) - self.prompt_lens[0]
        logits = torch.zeros(batch.input_ids.shape[0], 1, len(self.tokenizer))
        for b, s in enumerate(self.scripts):
            logits[b, 0, s[min(step, len(s) - 1)]] = 10.0
        return ForwardOut(logits=logits)


def test_generate_check_reads_the_prefix(handles):
    tok = handles("llama", "nnsight").tokenizer
    acc = tok(" " + ACCEPT + " Sure", add_special_tokens=False)["input_ids"]
    rej = tok(REJECT, add_special_tokens=False)["input_ids"]
    fake = ScriptedHandle(tok, [acc, rej])
    res = generate_check(fake, [[5, 6, 7], [5, 6, 8]], max_new_tokens=len(acc), progress=False)
    assert [r.accepted for r in res] == [True, False]
    assert [r.rejected for r in res] == [False, True]


@pytest.mark.parametrize(("backend", "use_cache"), [("tl", True), ("nnsight", True), ("nnsight", False)])
def test_greedy_generation_matches_transformers_generate(backend, use_cache, handles, hf_models):
    h = handles("qwen2", backend)
    prompts = random_prompts((6, 4))
    res = generate_check(h, prompts, max_new_tokens=4, progress=False, use_cache=use_cache)
    assert (h.hf_model is not None) == (backend == "nnsight")   # TL's hooked route has no HF model to cache
    for p, r in zip(prompts, res):
        with torch.no_grad():
            ids = hf_models("qwen2").generate(torch.tensor([p]), max_new_tokens=4, do_sample=False,
                                              pad_token_id=h.pad_id)[0, len(p):]
        assert r.text == h.tokenizer.decode(ids, skip_special_tokens=True).lstrip()


@pytest.mark.parametrize("use_cache", [True, False])
def test_sampled_generation_is_seeded(use_cache, handles):
    h = handles("llama", "nnsight")
    prompts = random_prompts((6, 4))
    state = torch.random.get_rng_state()
    a = generate_check(h, prompts, max_new_tokens=5, temperature=1.5, seed=3, progress=False, use_cache=use_cache)
    b = generate_check(h, prompts, max_new_tokens=5, temperature=1.5, seed=3, progress=False, use_cache=use_cache)
    c = generate_check(h, prompts, max_new_tokens=5, temperature=1.5, seed=4, progress=False, use_cache=use_cache)
    assert [g.text for g in a] == [g.text for g in b]
    assert [g.text for g in a] != [g.text for g in c]
    assert torch.equal(state, torch.random.get_rng_state())   # the caller's RNG is untouched
