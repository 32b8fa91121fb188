"""Attribution patching: the estimate is exactly linear-in-the-difference (checked against an autograd
directional derivative), IG with many steps converges to exact patching (completeness), validation reports
Spearman per site type, and bad input gives one-line errors."""

from __future__ import annotations

import pytest
import torch

from interp_af.analysis.attribution import attribute, spearman, validate_attribution
from interp_af.analysis.patching import patch_twins
from interp_af.errors import InterpAFError
from interp_af.models.metric import decision_tokens, metric_inputs

from ._patch_helpers import handle, twins


@pytest.fixture(scope="module")
def llama(tiny_models):
    return handle(tiny_models["llama"], "tl")


def test_atp_is_gradient_times_difference(llama):
    """AtP of resid_pre at one layer, summed over positions, equals d/de M(t + e (s - t)) at e = 0 (by hand)."""
    tw = twins(llama, 1)[0]
    res = attribute(llama, [tw], sites=("resid_pre", "head_out"), method="atp", progress=False)["resid_pre"]
    dt = decision_tokens(llama.tokenizer)
    m = llama.model
    t_ids = torch.tensor([metric_inputs(tw.b.input_ids, dt)])  # denoise: target = arm b
    s_ids = torch.tensor([metric_inputs(tw.a.input_ids, dt)])
    L = 1
    with torch.no_grad():
        _, cs = m.run_with_cache(s_ids, names_filter=f"blocks.{L}.hook_resid_pre")
        _, ct = m.run_with_cache(t_ids, names_filter=f"blocks.{L}.hook_resid_pre")
    delta = cs[f"blocks.{L}.hook_resid_pre"] - ct[f"blocks.{L}.hook_resid_pre"]
    eps = torch.zeros((), requires_grad=True)
    logits = m(ct[f"blocks.{L}.hook_resid_pre"] + eps * delta, start_at_layer=L)
    (logits[0, -1, dt.accept_id] - logits[0, -1, dt.reject_id]).backward()
    estimate_total = float((res.patched[0, L, 0] - res.target[0]).sum())
    assert abs(estimate_total - float(eps.grad)) < 1e-4 * max(1.0, abs(float(eps.grad)))
    assert res.info["forward_rows"] == 3.0  # 2 forward + 1 backward, all sites at once


def test_ig_converges_to_exact_whole_layer_patch(llama):
    """Completeness: IG attributions of one layer summed over positions = the effect of patching the whole layer."""
    tw = twins(llama, 1)[0]
    ig = attribute(llama, [tw], sites=("mlp_out",), method="ig", steps=32, by_position={"mlp_out": False},
                   progress=False)["mlp_out"]
    exact = patch_twins(llama, [tw], site="mlp_out", by_position=False, progress=False)
    assert float((ig.patched - exact.patched).abs().max()) < 2e-3 * max(1.0, float(exact.patched.abs().max()))
    atp = attribute(llama, [tw], sites=("mlp_out",), by_position={"mlp_out": False}, progress=False)["mlp_out"]
    # AtP is a different (first-order) estimate: same grid, finite, not identical to the IG one
    assert atp.patched.shape == ig.patched.shape and bool(torch.isfinite(atp.patched).all())


def test_validation_reports_spearman_per_site(llama):
    tws = twins(llama, 2)
    est = attribute(llama, tws, sites=("resid_pre", "head_out"), progress=False)
    chk = validate_attribution(llama, tws, est, k=8, progress=False)
    assert set(chk.spearman) == {"resid_pre", "head_out"}
    df = chk.to_frame()
    assert set(df["site"]) == {"resid_pre", "head_out"} and len(df) == 16
    # the exact column is real exact patching: check one cell against patch_twins
    row = df[df.site == "head_out"].iloc[0]
    exact = patch_twins(llama, tws, site="head_out", layers=[int(row.layer)], heads=[int(row["head"])],
                        progress=False)
    assert abs(float(exact.effect()[0, 0, 0]) - row.exact) < 1e-4 * max(1.0, abs(row.exact))  # batch-size float noise
    for r in chk.spearman.values():
        assert -1.0 <= r <= 1.0


def test_spearman_helper():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)


def test_bad_inputs(llama):
    tw = twins(llama, 1)
    with pytest.raises(InterpAFError, match="method"):
        attribute(llama, tw, method="magic", progress=False)
    with pytest.raises(InterpAFError, match="site"):
        attribute(llama, tw, sites=("resid_mid",), progress=False)
    with pytest.raises(InterpAFError, match="steps"):
        attribute(llama, tw, method="ig", steps=0, progress=False)
    with pytest.raises(InterpAFError, match="layer"):
        attribute(llama, tw, layers=[7], progress=False)


def test_scatter_figure(llama, tmp_path):
    from interp_af.report.patching import attribution_scatter, write_figure

    tws = twins(llama, 1)
    est = attribute(llama, tws, sites=("head_out",), progress=False)
    chk = validate_attribution(llama, tws, est, k=6, progress=False)
    fig = attribution_scatter(chk)
    assert fig.data[0].name.startswith("head_out (Spearman")
    assert len(fig.data[0].x) == 6
    assert write_figure(fig, tmp_path, "sc")[0].exists()


def test_nnsight_backend_gives_the_same_estimates(llama, tiny_models):
    nn = handle(tiny_models["llama"], "nnsight")
    tws = twins(llama, 1)
    for method in ("atp", "ig"):
        a = attribute(llama, tws, sites=("resid_pre", "head_out"), method=method, steps=4, progress=False)
        b = attribute(nn, tws, sites=("resid_pre", "head_out"), method=method, steps=4, progress=False)
        for site in a:
            assert float((a[site].patched - b[site].patched).abs().max()) < 1e-4, (method, site)


@pytest.mark.parametrize("backend", ["nnsight", "auto"])
def test_atp_after_the_shared_prefix_equals_whole_prompts(backend, tiny_models):
    """AtP runs the twins' shared prefix once (no gradients) and both passes on the suffix: same estimates as on
    whole prompts, exactly 0 before the first difference, and fewer forward-equivalents."""
    h = handle(tiny_models["llama"], backend)
    tws = twins(h, 2)
    sites = ("resid_pre", "head_out", "mlp_out")
    cached = attribute(h, tws, sites=sites, progress=False)
    whole = attribute(h, tws, sites=sites, progress=False, reuse_prefix=False)
    for site in sites:
        assert float((cached[site].patched - whole[site].patched).abs().max()) < 1e-6, site
        assert float(cached[site].patched.abs().max()) > 0
        assert cached[site].info["forward_rows"] < whole[site].info["forward_rows"] == 3.0 * len(tws)
    f = tws[0].diff_positions[0]
    first = cached["resid_pre"]
    assert float((first.patched[0, :, 0, :f] - first.target[0]).abs().max()) == 0.0
