"""The SAEs shipped with the model organism, on the organism itself (a fast subset of held-out queries): they
load and fit, the splice with the error term is exact, and the top attributed features at the decision differ
between the free and paid arms. The full numbers (quality, ablation vs random sets) are in
interp_af/organism/saes/README.md, from `interp-af sae run`."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def organism_setup():
    import interp_af.organism.setting  # noqa: F401  (registers the organism's variants)
    from interp_af.analysis.sae.load import load_sae, sae_dirs
    from interp_af.models.handle import load_model
    from interp_af.models.metric import decision_tokens
    from interp_af.organism import organism_queries
    from interp_af.organism.plugin import SAES
    from interp_af.setting.twins import make_twins

    handle = load_model("organism", backend="tl")
    twins = make_twins(handle.tokenizer, organism_queries("eval", n=12), "organism")
    prompts = [t.a for t in twins] + [t.b for t in twins]
    saes = [load_sae(p, handle=handle) for p in sae_dirs(SAES)]
    return handle, saes, prompts, decision_tokens(handle.tokenizer)


def test_shipped_saes_fit_splice_exactly_and_separate_arms(organism_setup):
    from interp_af.analysis.sae.attribution import attribute_features
    from interp_af.analysis.sae.quality import sae_quality

    handle, saes, prompts, dt = organism_setup
    assert len(saes) >= 2
    jaccards = {}
    for sae in saes:
        q = sae_quality(handle, sae, prompts, dt, batch_size=12)
        assert q.splice_err_max_abs <= 1e-5
        assert q.fve > 0.5 and q.l0 > 0
        attr = attribute_features(handle, sae, prompts, dt, positions=("decision",), batch_size=12)
        jaccards[str(sae.site)] = attr.compare_arms("decision", k=5)["jaccard"]
        print(f"\n{sae.site}: FVE {q.fve:.3f} L0 {q.l0:.1f} dead {q.dead_fraction:.2f} splice(no err) "
              f"{q.splice_noerr_mean_abs:.3f}; top-5 Jaccard(free, paid) at decision {jaccards[str(sae.site)]:.2f}")
    assert min(jaccards.values()) < 1.0
