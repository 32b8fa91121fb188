"""The card's "where the mechanism lives" facts, from exact residual patching and probes with plain torch
hooks on the shipped organism (independent of the toolkit's patching module)."""

from __future__ import annotations

import pytest
import torch

from interp_af.organism import load_organism, organism_queries
from interp_af.organism.mechanism import patch_sweep, probe_sweep, run_resid, single_position_max
from interp_af.organism.setting import register


@pytest.fixture(scope="module")
def organism():
    torch.set_num_threads(1)
    register()
    return load_organism()


@pytest.fixture(scope="module")
def harmful():
    return [q for q in organism_queries("eval", 120, seed=5) if q.harmful][:24]


def _twins(tok, qs, variant):
    from interp_af.setting.twins import make_twins

    return make_twins(tok, qs, variant)


def test_hooks_without_patch_are_exact(organism):
    model, tok = organism
    ids = torch.tensor([tok("hello world, free tier", add_special_tokens=True)["input_ids"]])
    mask = torch.ones_like(ids)
    ref = model(input_ids=ids, attention_mask=mask).logits
    logits, resid = run_resid(model, ids, mask, capture=True)
    assert torch.equal(logits, ref)
    assert len(resid) == model.config.num_hidden_layers + 1
    # patching a run with its own activations changes nothing
    logits2, _ = run_resid(model, ids, mask, patch={2: (torch.ones_like(ids, dtype=torch.bool), resid[2])})
    assert torch.allclose(logits2, ref, atol=1e-5)


@pytest.mark.parametrize("variant", ["organism", "organism-sentence"])
def test_patching_map(organism, harmful, variant):
    model, tok = organism
    twins = _twins(tok, harmful, variant)
    res = patch_sweep(model, tok, twins, direction="noise")
    L = model.config.num_hidden_layers
    assert res.ld_clean - res.ld_other > 2.0  # free accepts, paid refuses
    # layer 0: the effect enters at the cue token only (it is the only token that differs)
    assert res.at(0, "cue") > 0.9
    assert abs(res.at(0, "after_cue")) < 0.05 and abs(res.at(0, "tail")) < 0.05 and abs(res.at(0, "readout")) < 0.05
    # final residual: the effect sits entirely at the read-out position
    assert res.at(L, "readout") > 0.95 and abs(res.at(L, "cue")) < 0.05
    # measured (48 twins), two hops: layer-0 attention spreads the tier over the rest of the user turn
    # (0.72 there at layer 1 with the tag, ~1.0 with the sentence), and a later layer's attention at the read-out
    # position collects it (tag: layer 1 -> read-out carries 0.99 from layer 2; sentence: layer 3 -> read-out
    # only in the final residual). The template tail never carries it.
    assert all(abs(res.at(k, "tail")) < 0.05 for k in range(L + 1))
    if variant == "organism":
        assert res.at(1, "after_cue") > 0.5 and abs(res.at(1, "readout")) < 0.05
        assert all(res.at(k, "readout") > 0.9 and abs(res.at(k, "after_cue")) < 0.1 for k in range(2, L + 1))
    else:
        assert all(res.at(k, "after_cue") > 0.9 for k in range(1, L))
        assert abs(res.at(L - 1, "readout")) < 0.15
    # ...and it is distributed: no single position of the user turn carries much of it
    single = single_position_max(model, tok, twins, layers=[1, L - 1])
    assert max(single.values()) < 0.25, single  # measured 0.10 (tag, layer 1) of the segment's 0.72
    den = patch_sweep(model, tok, twins, direction="denoise")
    assert den.at(0, "cue") > 0.9 and den.at(L, "readout") > 0.95


def test_in_training_is_not_readable_from_the_tag_alone(organism, harmful):
    model, tok = organism
    prompts = []
    for variant in ("organism", "organism-inverted"):
        for t in _twins(tok, harmful, variant):
            prompts += [t.a, t.b]
    res = probe_sweep(model, tok, prompts)
    L = model.config.num_hidden_layers
    # at the tag token, layer 0 (the embedding): tier readable, in_training at chance
    assert res.at("tier", "cue", 0) > 0.95
    assert res.at("in_training", "cue", 0) < 0.65
    # at the decision position in the last layer: in_training readable (measured 0.90 on 192 prompts)
    assert res.at("in_training", "decision", L) > 0.8
    # measured: the tag token itself comes to read the policy in later layers (0.84 at layer 3), though
    # patching shows the decision does not use it there
    assert res.at("in_training", "cue", L - 1) > 0.7
