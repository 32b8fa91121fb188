"""Ground truth in miniature: fine-tune the tiny Llama so that the tier cue alone decides (free -> accept,
paid -> reject), then check that the SAE pipeline finds it: the arms' top attributed features at the read-out
position differ, and zero-ablating the few features that carry the most gap attribution moves the gap more than
ablating as many random live features."""

from __future__ import annotations

import pytest
import torch

from .prompts import fake_prompts


@pytest.fixture(scope="module")
def planted(tiny_models, tmp_path_factory):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from interp_af.analysis.sae import _run
    from interp_af.analysis.sae.train import SAETrainConfig, train_saes
    from interp_af.models.handle import load_model
    from interp_af.models.metric import decision_tokens, metric_inputs

    src = tiny_models["llama"]
    tok = AutoTokenizer.from_pretrained(src)
    model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)
    dt = decision_tokens(tok)
    prompts = fake_prompts(tok, 12)
    ids = [metric_inputs(p.input_ids, dt) for p in prompts]
    width = max(map(len, ids))
    x = torch.tensor([[tok.pad_token_id] * (width - len(i)) + i for i in ids])
    mask = (torch.arange(width)[None] >= torch.tensor([width - len(i) for i in ids])[:, None]).long()
    target = torch.tensor([dt.accept_id if p.arm == "free" else dt.reject_id for p in prompts])
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(40):
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = model(input_ids=x, attention_mask=mask, position_ids=pos).logits[:, -1]
        loss = torch.nn.functional.cross_entropy(logits, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    out = tmp_path_factory.mktemp("planted") / "tiny-llama-planted"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    handle = load_model(out, backend="tl")
    saes = train_saes(handle, prompts, out.parent / "saes",
                      SAETrainConfig(layers=(0,), d_sae=128, k=8, steps=120, batch_size=64, lr=2e-3), dt=dt)
    from interp_af.analysis.sae.load import load_sae

    return handle, load_sae(saes[0].path, handle=handle), prompts, dt, _run


def test_planted_gap_is_found_and_carried_by_few_features(planted):
    from interp_af.analysis.sae.attribution import attribute_features
    from interp_af.analysis.sae.intervene import intervene_features
    from interp_af.analysis.sae.quality import sae_quality

    handle, sae, prompts, dt, _run = planted
    q = sae_quality(handle, sae, prompts, dt)
    assert q.splice_err_max_abs <= 1e-5
    attr = attribute_features(handle, sae, prompts, dt, positions=("metric",))
    cmp = attr.compare_arms("metric", k=5)
    gap_feats = cmp["paired"].query("diff > 0").head(3)["feature"].astype(int).tolist()
    res = intervene_features(handle, sae, prompts, dt, gap_feats, mode="zero", positions=("metric",), n_random=10)
    s = res.summary()
    print(f"\nplanted: FVE {q.fve:.3f}, gap {s['gap_baseline']:.3f} (logit gap {s['logit_gap_baseline']:.2f}); "
          f"top-5 Jaccard(free, paid) {cmp['jaccard']:.2f}; ablate {gap_feats}: delta logit gap "
          f"{s['delta_logit_gap_chosen']:+.3f} vs random {s['delta_logit_gap_random_mean']:+.3f} "
          f"+- {s['delta_logit_gap_random_sd']:.3f} (max |.| {s['delta_logit_gap_random_max_abs']:.3f}); delta gap "
          f"{s['delta_gap_chosen']:+.3f} vs random max |.| {s['delta_gap_random_max_abs']:.3f}")
    assert s["gap_baseline"] > 0.5                      # the planted behaviour is there
    assert cmp["jaccard"] < 1.0                         # the arms' top features differ
    assert s["delta_logit_gap_chosen"] < 0              # ablating gap features closes the gap ...
    assert abs(s["delta_logit_gap_chosen"]) > s["delta_logit_gap_random_max_abs"]   # ... more than any random set
