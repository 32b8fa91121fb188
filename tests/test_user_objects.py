"""Objects a researcher already holds run through the whole API: a TransformerLens ``HookedTransformer``, an
nnsight ``LanguageModel`` and a raw ``sae_lens`` SAE object go through gap, capture, patching and the SAE
analysis, and give the numbers the toolkit's own handles give."""

from __future__ import annotations

import pytest

import interp_af as af
from tests.analysis._patch_helpers import QUERIES, short_setting


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    return short_setting(tmp_path_factory)


@pytest.fixture(scope="module")
def reference(tiny_models, setting):
    """The numbers through the toolkit's own loading (a path)."""
    t = af.resolve(str(tiny_models["llama"]), **setting)
    return af.gap(t, af.GapConfig(n_boot=50), progress=False).results["short-test"]["harmful"]


def _objects(tiny_models):
    import nnsight
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from interp_af.models.handle import load_model

    hooked = load_model(tiny_models["llama"], backend="tl").model   # a plain HookedTransformer
    tok = AutoTokenizer.from_pretrained(tiny_models["llama"])
    lm = nnsight.LanguageModel(AutoModelForCausalLM.from_pretrained(tiny_models["llama"]), tokenizer=tok)
    return {"HookedTransformer": hooked, "LanguageModel": lm}


@pytest.mark.parametrize("kind", ["HookedTransformer", "LanguageModel"])
def test_a_held_model_runs_through_gap_capture_patching(kind, tiny_models, setting, reference, tmp_path):
    obj = _objects(tiny_models)[kind]
    assert type(obj).__name__ == kind
    handle = af.load(obj)
    assert handle.backend == ("tl" if kind == "HookedTransformer" else "nnsight")
    t = af.resolve(obj, **setting)
    g = af.gap(t, af.GapConfig(n_boot=50), progress=False).results["short-test"]["harmful"]
    for s_ref, s in zip(reference.scores, g.scores):
        assert abs(s_ref.logit_diff - s.logit_diff) < 1e-4
    cap = af.capture(t, tmp_path / "acts", af.CaptureConfig(layers=(0, 1)), progress=False)
    assert cap.n_rows == 2 * len(QUERIES) and cap.acts("resid_post", "decision").shape[1] == 2
    p = af.patch(t, af.PatchingConfig(sites=("resid_pre",), layers=(0,), attribution=(), n_boot=50),
                 progress=False)
    res = p.exact[("denoise", "resid_pre")]
    cue = next(i for i, c in enumerate(res.columns) if "→" in c)
    assert abs(float(res.effect()[0, 0, cue]) - 1.0) < 1e-4   # at layer 0 the cue token carries everything
    # the analysis functions take the object directly too
    from interp_af.analysis.gap import compute_gap

    assert compute_gap(obj, t.twins(), n_boot=20, progress=False).n_queries == g.n_queries


def test_a_raw_sae_lens_sae_runs_through_the_sae_analysis(tiny_models, setting):
    import torch
    from sae_lens import TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    t = af.resolve(str(tiny_models["llama"]), **setting)
    torch.manual_seed(0)
    raw = TopKSAE(TopKSAEConfig(d_in=t.handle.d_model, d_sae=64, k=8,
                                metadata=SAEMetadata(hook_name="blocks.1.hook_resid_post", model_name="")))
    assert type(raw).__name__ == "TopKSAE"
    study = af.sae(t, af.SaeConfig(top_k=2, n_random=2, positions=("decision", "metric"),
                                   ablate_positions=("metric",)), saes=raw, progress=False)
    entry = study.entries["resid_post.1"]
    assert entry.quality.d_sae == 64 and "metric" in entry.ablations
    with pytest.raises(af.InterpAFError, match="cannot use a"):
        af.sae(t, saes=object())
