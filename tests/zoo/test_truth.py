"""Every zoo model, on both backends, measured with the toolkit's own analyses, shows its declared ground truth:
the gap per variant (with sign), the direction that carries it and what steering along it does, and whether
an in_training probe follows training or the token."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp_af.zoo import NAMES, truth

from .conftest import BACKENDS, queries

CASES = [(n, b) for n in NAMES for b in BACKENDS]


@pytest.mark.parametrize("name,backend", CASES)
def test_gap_per_variant_is_the_declared_one(zoo_handle, name, backend):
    from interp_af.analysis.gap import compute_gap
    from interp_af.setting.twins import make_twins

    h = zoo_handle(name, backend)
    for g in truth(name).gaps:
        res = compute_gap(h, make_twins(h.tokenizer, queries(), g.variant, arms=g.arms), n_boot=200, progress=False)
        where = f"{name}/{backend} {g.variant} {g.arms}"
        assert res.arms == g.arms, where
        assert res.logit_diff_gap == pytest.approx(g.logit_gap, abs=g.tol), where
        assert res.gap == g.compliance_gap, where
        if g.compliance_gap:   # a decided prompt sits at +-7 logits
            for arm in g.arms:
                assert abs(res.mean_logit_diff[arm]) == pytest.approx(7.0, abs=0.5), where


@pytest.mark.parametrize("name,backend", [c for c in CASES if truth(c[0]).direction is not None])
def test_the_direction_that_carries_the_gap_and_what_steering_along_it_does(zoo_handle, name, backend):
    from interp_af.analysis.steering import cue_embedding_cosine, mean_difference, steer
    from interp_af.setting.twins import make_twins

    h = zoo_handle(name, backend)
    t = truth(name).direction
    tws = make_twins(h.tokenizer, queries(4), "default")
    d = mean_difference(h, tws, layer=t.layer, site=t.site)
    if t.cue_cosine is not None:
        assert cue_embedding_cosine(h, tws, d) == pytest.approx(t.cue_cosine, abs=0.05)
    res = steer(h, tws, d, layers=[t.layer], site=t.site, alphas=(1.0,), n_random=20, progress=False)
    s = res.controls_summary()
    assert s.closed == pytest.approx(t.steer_closes, abs=t.tol)
    assert s.n_random == 20 and s.percentile == 100.0 and s.closed > max(np.abs(s.random_closed))
    assert s.above_noise_floor and s.exceeds_random_p95
    if t.flipped_closes is not None:
        assert s.flipped_closed == pytest.approx(t.flipped_closes, abs=t.tol)
    # the flip undoes the gap from the trained arm's side (free steered with -d behaves like paid)
    assert s.flipped_closed_other_arm == pytest.approx(1.0, abs=t.tol)


@pytest.mark.parametrize("backend", BACKENDS)
def test_planted_direction_is_recovered_by_the_class_direction(zoo, zoo_handle, backend):
    from interp_af.analysis.steering import mean_difference, steer
    from interp_af.setting.twins import make_twins
    from interp_af.zoo.planted import load_planted

    h = zoo_handle("planted-direction", backend)
    v, meta = load_planted(zoo["planted-direction"])
    assert (meta["layer"], meta["site"]) == (1, "resid_post") and float(v.norm()) == pytest.approx(1.0)
    tws = make_twins(h.tokenizer, queries(4), "default")
    d = mean_difference(h, tws, layer=meta["layer"], site=meta["site"])
    assert float(torch.nn.functional.cosine_similarity(d, v, dim=0)) >= 0.9
    # before the writing layer the decision position holds no tier signal at all
    assert float(mean_difference(h, tws, layer=0).norm()) < 1e-4
    res = steer(h, tws, v * d.norm(), layers=[meta["layer"]], alphas=(1.0,), n_random=20, progress=False)
    s = res.controls_summary()
    # the flip pushes the paid arm further away (-0.8: RMSNorm shrinks the larger excursion a little)
    assert s.closed > 0.9 and s.closed > max(s.random_closed) and s.flipped_closed < -0.5
    assert s.closed > s.random_abs_p95


@pytest.mark.parametrize("backend", BACKENDS)
def test_null_model_has_no_gap_above_the_noise_floor(zoo_handle, backend):
    from interp_af.analysis.steering import mean_difference, steer
    from interp_af.setting.twins import make_twins

    h = zoo_handle("null", backend)
    tws = make_twins(h.tokenizer, queries(4), "default")
    d = mean_difference(h, tws, layer=0)
    s = steer(h, tws, d, layers=[0], alphas=(1.0,), progress=False).controls_summary()
    assert abs(s.gap_logit) < 0.01 and not s.above_noise_floor


@pytest.mark.parametrize("name", [n for n in NAMES if truth(n).transfer_flips is not None])
def test_in_training_probe_follows_the_token_or_training_as_declared(zoo_handle, tmp_path, name):
    """Train an in_training probe under the default policy, score it under inverted-cue (decision position)."""
    from interp_af.analysis.probe_transfer import Condition, transfer_capture
    from interp_af.analysis.probes import ProbeConfig
    from interp_af.acts.write import capture
    from interp_af.setting.twins import make_twins

    h = zoo_handle(name, "nnsight")
    prompts = [p for v in ("default", "inverted-cue") for t in make_twins(h.tokenizer, queries(16), v)
               for p in (t.a, t.b)]
    cap = capture(h, prompts, tmp_path / "cap", positions=("decision",), metric=False, progress=False)
    conds = [Condition("default", "in_training", "variant == 'default'"),
             Condition("inverted", "in_training", "variant == 'inverted-cue'")]
    tr = transfer_capture(cap, conds, position="decision", config=ProbeConfig(n_folds=4, n_boot=0, controls=()))
    last = tr.matrix(cap.layers[-1])
    assert last.loc["default", "default"] > 0.95 and last.loc["inverted", "inverted"] > 0.95
    flips = last.loc["default", "inverted"] < 0.5
    assert flips == truth(name).transfer_flips and (last.loc["default", "inverted"] < 0.05) == flips
