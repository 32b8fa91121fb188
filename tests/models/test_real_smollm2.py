"""SmolLM2-135M-Instruct (the packaged model, dequantised Q4_1): the gap on 8 AdvBench queries, both backends.

The first test to run converts the GGUF into the interp_af cache (under a minute, once per machine). TL runs it
on the hooked route (a ``HookedTransformer``, TL supports Llama), nnsight traces the plain transformers model;
the per-prompt logit differences must agree within 1e-4, and one of them with a bare transformers forward.
"""

from __future__ import annotations

import pytest
import torch

from interp_af.analysis.gap import compute_gap
from interp_af.models.handle import load_model
from interp_af.models.metric import decision_tokens, metric_inputs
from interp_af.setting.queries import load_queries
from interp_af.setting.twins import make_twins

NAME = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def smol():
    return {b: load_model(NAME, backend=b) for b in ("tl", "nnsight")}


def test_loads_on_both_backends_with_its_provenance(smol):
    tl, nn = smol["tl"], smol["nnsight"]
    assert tl.route == "hooked" and nn.model_type == "llama"
    for h in (tl, nn):
        assert (h.n_layers, h.d_model, h.n_heads, h.d_head) == (30, 576, 9, 64)
        assert h.n_ctx == 8192 and len(h.tokenizer) == 49152
        assert h.source["gguf_sha256"].startswith("b179c952") and h.source["packaged"] == NAME
        assert h.weights_note == "dequantised Q4_1 weights, not the original checkpoint"
    torch.testing.assert_close(tl.embedding_matrix(), nn.embedding_matrix())


def test_gap_on_eight_queries_agrees_across_backends(smol):
    qs = load_queries(limit=8)
    twins = make_twins(smol["nnsight"].tokenizer, qs, "default")
    assert all(t.aligned for t in twins) and {len(t.diff_positions) for t in twins} == {1}
    results = {b: compute_gap(h, twins, progress=False, n_boot=500) for b, h in smol.items()}
    lds = {b: torch.tensor([s.logit_diff for s in r.scores], dtype=torch.float64) for b, r in results.items()}
    assert results["tl"].n_queries == results["nnsight"].n_queries == 8
    assert [(s.query_id, s.arm) for s in results["tl"].scores] == [(s.query_id, s.arm) for s in results["nnsight"].scores]
    assert (lds["tl"] - lds["nnsight"]).abs().max() < 1e-4, (lds["tl"] - lds["nnsight"]).abs().max()
    assert abs(results["tl"].logit_diff_gap - results["nnsight"].logit_diff_gap) < 1e-4
    assert results["tl"].gap == results["nnsight"].gap
    assert lds["tl"].abs().max() > 0 and torch.isfinite(lds["tl"]).all()
    assert results["tl"].config["weights_note"] == "dequantised Q4_1 weights, not the original checkpoint"
    assert results["nnsight"].config["gguf_sha256"] == smol["nnsight"].source["gguf_sha256"]

    # the handle's number is the plain transformers forward's number (no hooks, no tracing)
    tok = smol["nnsight"].tokenizer
    dt = decision_tokens(tok)
    assert [tok.decode([i]) for i in dt.shared] == ["<"]
    ids = torch.tensor([metric_inputs(twins[0].a.input_ids, dt)])
    with torch.no_grad():
        logits = smol["nnsight"].hf_model(ids).logits[0, -1]
    assert abs(float(logits[dt.accept_id] - logits[dt.reject_id]) - float(lds["nnsight"][0])) < 1e-4


def test_the_shipped_sae_fits_the_packaged_model(smol):
    """The SAE the SmolLM2 study ships (trained by ``sae train`` on these dequantised weights) loads against the
    model, and reconstructs requests it was not trained on (AdvBench rows 0-1; it saw rows 500-507)."""
    from pathlib import Path

    from interp_af.analysis.sae.load import load_sae
    from interp_af.analysis.sae.quality import sae_quality

    folder = Path(__file__).resolve().parents[2] / "experiments/saes/smollm2-135m-instruct/resid_post.15"
    h = smol["nnsight"]
    sae = load_sae(folder, handle=h)                       # checks site, width and model name against the handle
    twins = make_twins(h.tokenizer, load_queries(limit=2), "default")
    q = sae_quality(h, sae, [p for t in twins for p in (t.a, t.b)], decision_tokens(h.tokenizer), batch_size=4)
    assert q.fve > 0.8 and 0 < q.l0 <= 16                  # TopK k=16
    assert q.splice_err_max_abs < 1e-3                     # spliced in with its error term, the metric is unchanged
