"""Both backends reproduce plain transformers: logits and every canonical site, under left padding."""

from __future__ import annotations

import pytest
import torch

from interp_af.models.handle import ForwardOut, position_ids
from interp_af.models.sites import SITES, SiteKey
from tests.conftest import ARCHS
from tests.models._ref import hf_reference
from tests.models.conftest import BACKENDS, random_prompts

TOL = 1e-4


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arch", ARCHS)
def test_matches_transformers_at_every_site(arch, backend, handles, hf_models):
    h = handles(arch, backend)
    batch = h.collate(random_prompts())
    ref_logits, ref = hf_reference(hf_models(arch), batch.input_ids, batch.attention_mask, position_ids(batch))
    keys = [SiteKey(s, layer) for s in SITES for layer in range(h.n_layers)]
    last = (batch.lengths - 1)[:, None]
    out = h.forward(batch, capture=keys, logit_positions=last)
    assert isinstance(out, ForwardOut)
    real = batch.attention_mask.bool()
    worst = {}
    for k in keys:
        got, want = out.acts[k], ref[(k.site, k.layer)]
        assert got.shape == want.shape, k
        worst[str(k)] = (got[real] - want[real]).abs().max().item()
    logit_diff = (out.logits[:, 0] - ref_logits[:, -1]).abs().max().item()
    print(f"\n{arch}/{backend}: max |logits - HF| = {logit_diff:.2e}; max |act - HF| = {max(worst.values()):.2e}")
    assert logit_diff <= TOL
    assert max(worst.values()) <= TOL, worst
    assert out.acts[SiteKey("head_out", 0)].shape[-2:] == (h.n_heads, h.d_head)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arch", ARCHS)
def test_batched_equals_unbatched_under_left_padding(arch, backend, handles):
    h = handles(arch, backend)
    prompts = random_prompts((4, 11, 7), seed=1)
    batch = h.collate(prompts)
    keys = [SiteKey("resid_post", h.n_layers - 1), SiteKey("head_out", 0), SiteKey("mlp_out", 1)]
    pos = torch.tensor([[0, 2, 3], [0, 5, 10], [1, 4, 6]])
    logit_pos = torch.tensor([[1, 3], [2, 10], [0, 6]])
    out = h.forward(batch, capture=keys, capture_positions=pos, logit_positions=logit_pos)
    assert batch.offsets.tolist() == [7, 0, 4]
    for b, p in enumerate(prompts):
        single = h.forward(h.collate([p]), capture=keys, capture_positions=pos[b:b + 1],
                           logit_positions=logit_pos[b:b + 1])
        torch.testing.assert_close(out.logits[b], single.logits[0], atol=TOL, rtol=0)
        for k in keys:
            torch.testing.assert_close(out.acts[k][b], single.acts[k][0], atol=TOL, rtol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_stop_at_layer_and_default_logits(backend, handles):
    h = handles("qwen2", backend)
    batch = h.collate(random_prompts())
    full = h.forward(batch, capture=[SiteKey("resid_post", 0)])
    assert full.logits.shape == (3, 1, len(h.tokenizer))
    assert full.acts[SiteKey("resid_post", 0)].shape == (3, batch.input_ids.shape[1], h.d_model)
    cut = h.forward(batch, capture=[SiteKey("resid_post", 0)], stop_at_layer=1)
    assert cut.logits is None
    torch.testing.assert_close(cut.acts[SiteKey("resid_post", 0)], full.acts[SiteKey("resid_post", 0)])
    last = (batch.lengths - 1)[:, None]
    torch.testing.assert_close(h.forward(batch, logit_positions=last).logits, full.logits)


def test_backends_agree_with_each_other(handles):
    """Same handle API, same numbers: TL and nnsight on identical inputs (incl. gradients)."""
    outs = []
    for backend in BACKENDS:
        h = handles("llama", backend)
        batch = h.collate(random_prompts(seed=3))
        pos = torch.tensor([[1, 8], [0, 4], [2, 6]])
        keys = [SiteKey("head_out", 0), SiteKey("resid_pre", 1), SiteKey("mlp_out", 1)]
        out = h.forward(batch, capture=keys, capture_positions=pos, grad=True)
        full = h.forward(batch, capture=keys, grad=True)          # every position: the live tensors
        (out.logits[:, 0, 7].sum() + full.logits[:, 0, 7].sum()).backward()
        outs.append([out.logits.detach()] + [o.acts[k].grad for o in (out, full) for k in keys])
    for got, want in zip(*outs):
        assert want is not None and want.abs().sum() > 0
        torch.testing.assert_close(got, want, atol=TOL, rtol=0)


def test_llama31_rope_scaling_matches_on_long_prompt(tmp_path):
    """Llama 3.1's "llama3" RoPE scaling (what real 8B/70B/405B checkpoints use) on a prompt longer than the
    original context, so the scaled low frequencies matter."""
    import transformers as tf

    from interp_af.models.handle import load_model
    from interp_af.testing.tiny import model_config, train_tokenizer

    tok = train_tokenizer("llama3")
    rope = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 32}
    cfg = model_config("llama", len(tok), rope_parameters=rope, bos_token_id=tok.bos_token_id,
                       eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    hf = tf.AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()
    path = tmp_path / "llama31-rope"
    hf.save_pretrained(path)
    tok.save_pretrained(path)
    prompt = random_prompts((300,), seed=2)[0]
    ref_logits, _ = hf_reference(hf, torch.tensor([prompt]))
    for backend in BACKENDS:
        h = load_model(path, backend=backend)
        out = h.forward(h.collate([prompt]), logit_positions=torch.arange(0, 300, 7)[None])
        diff = (out.logits[0] - ref_logits[0, ::7]).abs().max().item()
        print(f"\nllama3-rope/{backend}: max |logits - HF| over 300 tokens = {diff:.2e}")
        assert diff <= TOL
