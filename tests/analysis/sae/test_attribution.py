"""Feature attribution to the compliance metric: grad x act through the spliced SAE (error node included) and
integrated gradients."""

from __future__ import annotations

import pytest
import torch

from interp_af.analysis.sae import _run
from interp_af.analysis.sae.attribution import FeatureAttribution, attribute_features
from interp_af.errors import InterpAFError
from interp_af.models.interventions import Intervention


def _spliced_grad(handle, sae, prompts, dt, names):
    """Reference: splice decode(f) + err at the positions with f a leaf, and take dM/df by autograd."""
    pb = next(_run.batches(handle, prompts, dt, names, len(prompts)))
    key = sae.site
    x = handle.forward(pb.batch, capture=(key,), capture_positions=pb.positions).acts[key]
    f = sae.encode(x).detach().requires_grad_(True)
    err = (x - sae.decode(f)).detach()
    with torch.enable_grad():
        value = sae.sae.decode(f) + err
        out = handle.forward(pb.batch, interventions=[Intervention(key.site, key.layer, "replace", pb.positions, value)],
                             grad=True)
        _run.logit_diff(out.logits[:, -1], dt).sum().backward()
    return f.detach(), f.grad, err, out


def test_gxa_equals_autograd_through_the_splice(sae1, sae_handle, sae_prompts, sae_dt, tmp_path):
    names = ("cue", "decision", "metric")
    a = attribute_features(sae_handle, sae1, sae_prompts, sae_dt, positions=names, batch_size=5)
    f, g_f, err, _ = _spliced_grad(sae_handle, sae1, sae_prompts, sae_dt, names)
    ref = f * g_f
    assert torch.allclose(a.attr, ref, atol=1e-6, rtol=1e-4), (a.attr - ref).abs().max()
    assert torch.allclose(a.acts, f, atol=1e-6)
    assert a.err.shape == (len(sae_prompts), 3) and a.err.abs().sum() > 0
    # the last layer only reaches the metric through the read position: elsewhere the gradient is exactly 0
    assert a.attr[:, :2].abs().sum() == 0 and a.attr[:, 2].abs().sum() > 0
    top = a.top("metric", "free", k=4)
    assert len(top) == 4 and top["attr"].abs().is_monotonic_decreasing
    cmp = a.compare_arms("metric", k=3)
    assert cmp["arms"] == ("free", "paid") and 0 <= cmp["jaccard"] <= 1 and len(cmp["top_a"]) == 3
    back = FeatureAttribution.load(a.save(tmp_path / "attr"))
    assert torch.equal(back.attr, a.attr) and back.positions == names and back.arm == a.arm
    assert not a.to_frame().empty


def test_integrated_gradients_complete(sae0, sae_handle, sae_prompts, sae_dt):
    """IG over the site's nodes at two positions (layer 0, so the path runs through a whole block): the sum
    of feature + error attributions = M(x) - M(baseline)."""
    prompts, names = sae_prompts[:4], ("decision", "metric")
    ig = attribute_features(sae_handle, sae0, prompts, sae_dt, positions=names, method="ig", steps=24)
    pb = next(_run.batches(sae_handle, prompts, sae_dt, names, 4))
    key = sae0.site
    x = sae_handle.forward(pb.batch, capture=(key,), capture_positions=pb.positions).acts[key]
    base = sae0.decode(torch.zeros(1, 1, sae0.d_sae)).expand_as(x)
    out = sae_handle.forward(pb.batch, interventions=[Intervention(key.site, key.layer, "replace", pb.positions, base)])
    m_base = _run.logit_diff(out.logits[:, -1], sae_dt)
    total = ig.attr.sum((1, 2)) + ig.err.sum(1)
    expected = ig.metric - m_base
    print(f"\nIG completeness: sum attr {total.tolist()} vs M(x)-M(base) {expected.tolist()}")
    assert torch.allclose(total, expected, atol=2e-4, rtol=0.03)
    assert expected.abs().min() > 1e-3                  # not a vacuous 0 = 0
    gxa = attribute_features(sae_handle, sae0, prompts, sae_dt, positions=names)
    assert not torch.allclose(gxa.attr, ig.attr)        # a different estimator, same shapes
    assert ig.steps == 24 and ig.method == "ig"


def test_bad_inputs(sae1, sae_handle, sae_prompts, sae_dt):
    with pytest.raises(InterpAFError, match="method 'shap' is unknown"):
        attribute_features(sae_handle, sae1, sae_prompts, sae_dt, method="shap")
    with pytest.raises(InterpAFError, match="no named position 'nowhere'"):
        attribute_features(sae_handle, sae1, sae_prompts, sae_dt, positions=("nowhere",))
