"""The ``auto`` backend: forward passes (gradients too) on nnsight, exact patch grids on TransformerLens.

Expected before the run: every forward (logits, every site, interventions, gradients) equals the nnsight handle
exactly (it is that handle) and the TL handle within float32 noise; no TransformerLens model exists until a
patch grid asks for one; patch grids equal the TL handle's fast path; on an architecture TL reaches only through
its Bridge (Gemma 2) a patch grid takes the generic path on nnsight, with the same numbers and no second copy.
"""

from __future__ import annotations

import pytest
import torch

from interp_af.analysis.patching import patch_twins
from interp_af.models.handle import load_model
from interp_af.models.interventions import Intervention
from interp_af.models.routed import RoutedHandle
from interp_af.models.sites import SITES, SiteKey
from tests.analysis._patch_helpers import twins
from tests.conftest import ARCHS
from tests.models.conftest import random_prompts

TOL = 1e-4


@pytest.mark.parametrize("arch", ARCHS)
def test_forward_is_nnsight_and_matches_tl_without_building_tl(arch, tiny_models, handles):
    auto = load_model(tiny_models[arch])          # the default backend
    assert isinstance(auto, RoutedHandle) and auto.backend == "auto" and not auto.tl_built
    batch = auto.collate(random_prompts())
    keys = [SiteKey(s, layer) for s in SITES for layer in range(auto.n_layers)]
    steer = [Intervention(site="resid_post", layer=0, op="add", positions=torch.tensor([[1], [1], [1]]),
                          value=torch.ones(auto.d_model))]
    real = batch.attention_mask.bool()
    for ivs in ((), steer):
        got = auto.forward(batch, capture=keys, interventions=ivs)
        same = handles(arch, "nnsight").forward(batch, capture=keys, interventions=ivs)
        tl = handles(arch, "tl").forward(batch, capture=keys, interventions=ivs)
        assert torch.equal(got.logits, same.logits)
        assert (got.logits - tl.logits).abs().max() <= TOL
        for k in keys:
            assert torch.equal(got.acts[k], same.acts[k]), k
            assert (got.acts[k][real] - tl.acts[k][real]).abs().max() <= TOL, k
    assert not auto.tl_built, "a forward without gradients must not build the TransformerLens model"
    assert auto.hf_model is auto.fwd.hf_model
    torch.testing.assert_close(auto.embedding_matrix(), handles(arch, "nnsight").embedding_matrix())
    assert "not built yet" in auto.route


def test_gradients_equal_tl_without_building_tl(tiny_models, handles):
    auto = load_model(tiny_models["llama"], backend="auto")
    tl = handles("llama", "tl")
    batch = auto.collate(random_prompts(seed=3))
    keys = [SiteKey("head_out", 0), SiteKey("resid_pre", 1), SiteKey("mlp_out", 1)]
    grads = []
    for h in (auto, tl):
        out = h.forward(batch, capture=keys, grad=True)
        out.logits[:, 0, 7].sum().backward()
        grads.append([out.acts[k].grad for k in keys])
    assert not auto.tl_built
    for got, want in zip(*grads):
        assert got is not None and want.abs().sum() > 0
        torch.testing.assert_close(got, want, atol=TOL, rtol=0)
    # the TL side reads the same weights: the weights fingerprint is the HF model's, as on nnsight
    from interp_af.acts.identity import find_module, weights_fingerprint

    assert weights_fingerprint(find_module(auto)) == weights_fingerprint(find_module(handles("llama", "nnsight")))


@pytest.mark.parametrize("site", ["resid_pre", "head_out", "mlp_out"])
def test_patch_grid_takes_tl_fast_path_with_tl_numbers(site, tiny_models, handles):
    auto = load_model(tiny_models["llama"], backend="auto")
    tl = handles("llama", "tl")
    tws = twins(tl, 2)
    got = patch_twins(auto, tws, site=site, progress=False)
    want = patch_twins(tl, tws, site=site, progress=False)
    generic = patch_twins(auto, tws, site=site, fast=False, progress=False)
    assert got.info["path"] == want.info["path"] == "tl-prefix-cache" and generic.info["path"] == "generic"
    assert auto.tl_built and auto.route.endswith("patch grids: tl hooked")
    assert float((got.patched - want.patched).abs().max()) < 1e-5
    assert float((got.patched - generic.patched).abs().max()) < 1e-4
    assert float(got.patched.abs().max()) > 0


def test_bridge_architecture_falls_back_to_generic_patching(tiny_models, handles):
    auto = load_model(tiny_models["gemma2"], backend="auto")
    tws = twins(auto, 1)
    got = patch_twins(auto, tws, site="resid_pre", progress=False)
    want = patch_twins(handles("gemma2", "nnsight"), tws, site="resid_pre", progress=False)
    assert got.info["path"] == "generic" and not auto.tl_built
    assert float((got.patched - want.patched).abs().max()) < 1e-5


def test_remote_auto_is_nnsight_and_configs_agree():
    from interp_af.models.handle import BACKENDS
    from interp_af.targets.config import BACKENDS as CONFIG_BACKENDS, ModelConfig

    assert CONFIG_BACKENDS == BACKENDS and ModelConfig().backend == "auto"
    # remote=True with the default backend asks NDIF for the model: offline, the one-line nnsight refusal
    from interp_af.errors import InterpAFError

    with pytest.raises(InterpAFError, match="NDIF"):
        load_model("meta-llama/Llama-3.1-405B-Instruct", remote=True)


def test_model_tl_hooked_refuses_takes_generic_patching_and_keeps_one_copy(tmp_path, handles):
    """A Llama with a custom head_dim (TL's hooked loader ignores it, so it is refused): the patch grid runs the
    generic path on nnsight and the TransformerLens model tried for it is not kept."""
    import transformers as tf

    from interp_af.testing.tiny import model_config, train_tokenizer

    tok = train_tokenizer("llama3")
    cfg = model_config("llama", len(tok), head_dim=32, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                       pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    path = tmp_path / "odd-head-dim"
    tf.AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval().save_pretrained(path)
    tok.save_pretrained(path)
    auto = load_model(path)
    tws = twins(auto, 1)
    got = patch_twins(auto, tws, site="resid_pre", progress=False)
    want = patch_twins(auto, tws, site="resid_pre", fast=False, progress=False)
    assert got.info["path"] == "generic" and not auto.tl_built
    assert float((got.patched - want.patched).abs().max()) == 0.0
