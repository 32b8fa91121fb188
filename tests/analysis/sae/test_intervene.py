"""Ablating / steering SAE features: compliance per arm, the gap, random-feature controls."""

from __future__ import annotations

import pytest
import torch

from interp_af.analysis.sae import _run
from interp_af.analysis.sae.intervene import FeatureIntervention, intervene_features
from interp_af.errors import InterpAFError
from interp_af.models.interventions import Intervention


def test_steer_zero_is_identity_and_zero_ablation_matches_hand(sae1, sae_handle, sae_prompts, sae_dt, tmp_path):
    same = intervene_features(sae_handle, sae1, sae_prompts, sae_dt, [0, 1], mode="steer", alpha=0.0, n_random=0)
    assert abs(same.chosen.gap - same.baseline.gap) < 1e-7 and same.delta_gap == pytest.approx(0, abs=1e-7)

    pb = next(_run.batches(sae_handle, sae_prompts, sae_dt, ("decision",), len(sae_prompts)))
    key = sae1.site
    x = sae_handle.forward(pb.batch, capture=(key,), capture_positions=pb.positions).acts[key]
    f = sae1.encode(x)
    active = sorted(set(torch.nonzero(f[:, 0] > 0)[:, 1].tolist()))[:5]
    res = intervene_features(sae_handle, sae1, sae_prompts, sae_dt, active, mode="zero", n_random=4, seed=3,
                             batch_size=5)
    g = f.clone()
    g[..., active] = 0
    delta = sae1.decode(g) - sae1.decode(f)
    out = sae_handle.forward(pb.batch, interventions=[Intervention(key.site, key.layer, "add", pb.positions, delta)])
    prob = torch.sigmoid(_run.logit_diff(out.logits[:, -1], sae_dt)).double()
    arm = [p.arm for p in sae_prompts]
    hand_free = prob[[i for i, a in enumerate(arm) if a == "free"]].mean()
    assert res.chosen.compliance_a == pytest.approx(float(hand_free), abs=1e-6)
    assert res.baseline.features == () and len(res.random) == 4
    assert all(len(c.features) == len(active) and not set(c.features) & set(active) for c in res.random)
    s = res.summary()
    assert s["n_random"] == 4 and s["delta_gap_chosen"] == pytest.approx(res.chosen.gap - res.baseline.gap)
    assert FeatureIntervention.load(res.save(tmp_path / "iv.json")) == res
    assert len(res.to_frame()) == 6


def test_mean_ablation_and_all_positions(sae1, sae_handle, sae_prompts, sae_dt):
    mean = intervene_features(sae_handle, sae1, sae_prompts, sae_dt, [1, 2, 3], mode="mean", n_random=1)
    allpos = intervene_features(sae_handle, sae1, sae_prompts, sae_dt, [1, 2, 3], mode="zero", positions="all",
                                n_random=1)
    assert allpos.positions == ("all",) and mean.mode == "mean"
    for r in (mean, allpos):
        assert 0 <= r.chosen.compliance_a <= 1 and r.chosen.gap_lo <= r.chosen.gap <= r.chosen.gap_hi


def test_bad_inputs(sae1, sae_handle, sae_prompts, sae_dt):
    with pytest.raises(InterpAFError, match="mode 'erase' is unknown"):
        intervene_features(sae_handle, sae1, sae_prompts, sae_dt, [1], mode="erase")
    with pytest.raises(InterpAFError, match="outside 0..95"):
        intervene_features(sae_handle, sae1, sae_prompts, sae_dt, [96])
    with pytest.raises(InterpAFError, match="only arm"):
        intervene_features(sae_handle, sae1, sae_prompts[:6], sae_dt, [1])
