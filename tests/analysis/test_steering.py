"""Steering: an exact direction closes exactly the gap it should, controls are what they claim, both
backends agree, steered greedy decoding matches Hugging Face when unsteered, and bad input is one line."""

from __future__ import annotations

import pytest
import torch

from interp_af.analysis.steering import (SteerResult, control_directions, cue_embedding_cosine, generate_steered,
                                         mean_difference, steer)
from interp_af.errors import InterpAFError
from interp_af.models.sites import SiteKey

from ._patch_helpers import handle, twins


@pytest.fixture(scope="module")
def llama(tiny_models):
    return handle(tiny_models["llama"], "tl")


def test_cue_direction_at_layer0_closes_exactly_the_gap(llama):
    """At resid_pre of layer 0 the arms differ only by the cue token's embedding: adding that difference at
    the cue position turns arm b into arm a (closed = 1), and subtracting it turns a into b."""
    tws = twins(llama, 2)
    d = mean_difference(llama, tws, layer=0, site="resid_pre", position="cue")
    assert cue_embedding_cosine(llama, tws, d) == pytest.approx(1.0, abs=1e-5)
    res = steer(llama, tws, d, layers=[0], site="resid_pre", positions="cue", alphas=(-1.0, 1.0), n_random=2,
                progress=False)
    closed_b = res.closed(arm=1)  # [controls, alphas]
    closed_a = res.closed(arm=0)
    c = res.controls.index("direction")
    assert res.controls == ("direction", "flipped", "random0", "random1")
    assert float(closed_b[c, res.alphas.index(1.0)]) == pytest.approx(1.0, abs=1e-4)
    assert float(closed_a[c, res.alphas.index(-1.0)]) == pytest.approx(1.0, abs=1e-4)
    assert float(closed_b[res.controls.index("flipped"), res.alphas.index(-1.0)]) == pytest.approx(1.0, abs=1e-4)
    df = res.to_frame()
    assert len(df) == 2 * len(res.controls) * len(res.alphas)
    assert {"control", "alpha", "arm", "compliance", "closed", "closed_lo", "closed_hi"} <= set(df.columns)


def test_mean_difference_matches_captured_activations(llama):
    tws = twins(llama, 2)
    d = mean_difference(llama, tws, layer=1, site="resid_post", position="decision")
    key = SiteKey("resid_post", 1)
    diffs = []
    for tw in tws:
        out = llama.forward(llama.collate([tw.a.input_ids, tw.b.input_ids]), capture=[key],
                            capture_positions=torch.tensor([[tw.a.positions["decision"]], [tw.b.positions["decision"]]]))
        diffs.append(out.acts[key][0, 0] - out.acts[key][1, 0])
    assert torch.allclose(d, torch.stack(diffs).mean(0), atol=1e-5)


def test_controls_are_norm_matched_and_flipped():
    d = torch.randn(64)
    ctrl = control_directions(d, n_random=3, seed=1)
    assert torch.equal(ctrl["flipped"], -d)
    for k in range(3):
        assert float(ctrl[f"random{k}"].norm()) == pytest.approx(float(d.norm()), rel=1e-5)
        assert abs(float(torch.nn.functional.cosine_similarity(ctrl[f"random{k}"], d, dim=0))) < 0.6


def test_backends_agree_and_project_out(llama, tiny_models, tmp_path):
    nn = handle(tiny_models["llama"], "nnsight")
    tws = twins(llama, 2)
    d = mean_difference(llama, tws, layer=0, site="resid_post")
    a = steer(llama, tws, d, layers=[0, 1], alphas=(2.0,), n_random=1, progress=False)
    b = steer(nn, tws, d, layers=[0, 1], alphas=(2.0,), n_random=1, progress=False)
    assert float((a.ld - b.ld).abs().max()) < 1e-4
    abl = steer(llama, tws, d, layers=[1], op="project_out", n_random=1, progress=False)
    assert abl.controls == ("direction", "random0") and abl.alphas == (1.0,)
    assert not torch.equal(abl.ld[0, 0], abl.base)  # ablation changed something
    a.save(tmp_path / "s")
    back = SteerResult.load(tmp_path / "s")
    assert torch.equal(back.ld, a.ld) and back.controls == a.controls and back.cue_cosine == a.cue_cosine


def test_generation_unsteered_equals_hf_greedy(llama, tiny_models):
    import transformers

    tw = twins(llama, 1)[0]
    got = generate_steered(llama, [tw.b], None, layers=[0], max_new_tokens=4)
    hf = transformers.AutoModelForCausalLM.from_pretrained(tiny_models["llama"])
    ids = torch.tensor([tw.b.input_ids])
    ref = hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=4, do_sample=False,
                      pad_token_id=llama.pad_id)
    assert got == [llama.tokenizer.decode(ref[0, ids.shape[1]:])]
    d = mean_difference(llama, [tw], layer=0, site="resid_pre", position="cue")
    steered = generate_steered(llama, [tw.b], d * 50, layers=[0], max_new_tokens=4)
    assert len(steered) == 1 and isinstance(steered[0], str)


def test_bad_inputs(llama):
    tws = twins(llama, 1)
    with pytest.raises(InterpAFError, match=r"shape \(32,\).*width is 64") as e:
        steer(llama, tws, torch.ones(32), layers=[0], progress=False)
    assert "\n" not in str(e.value)
    with pytest.raises(InterpAFError, match="layer"):
        steer(llama, tws, torch.ones(64), layers=[5], progress=False)
    with pytest.raises(InterpAFError, match="position"):
        steer(llama, tws, torch.ones(64), layers=[0], positions="nowhere", progress=False)
    with pytest.raises(InterpAFError, match="zero"):
        steer(llama, tws, torch.zeros(64), layers=[0], progress=False)


def test_dose_response_figure(llama, tmp_path):
    from interp_af.report.patching import write_figure
    from interp_af.report.steering import dose_response

    tws = twins(llama, 2)
    d = mean_difference(llama, tws, layer=0)
    res = steer(llama, tws, d, layers=[0], alphas=(-1.0, 1.0), n_random=2, progress=False)
    fig = dose_response(res)
    names = [t.name for t in fig.data]
    assert {"direction", "flipped", "random0", "random1"} <= set(names)
    assert write_figure(fig, tmp_path, "dose")[0].exists()
