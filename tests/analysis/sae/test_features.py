"""Feature activations at named positions (from the handle and from a capture) and differential features."""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats

from interp_af.analysis.sae import _run
from interp_af.analysis.sae.features import (DifferentialFeatures, FeatureActs, differential_features,
                                             encode_capture, encode_prompts)

NAMES = ("cue", "end_user", "decision")


def test_encode_prompts_equals_sae_encode_of_captured_acts(sae0, sae_handle, sae_prompts, sae_dt, tmp_path):
    fa = encode_prompts(sae_handle, sae0, sae_prompts, sae_dt, positions=NAMES, batch_size=5)
    pb = next(_run.batches(sae_handle, sae_prompts, sae_dt, NAMES, len(sae_prompts)))
    x = sae_handle.forward(pb.batch, capture=(sae0.site,), capture_positions=pb.positions).acts[sae0.site]
    with torch.no_grad():
        ref = sae0.sae.encode(x)
    assert torch.allclose(fa.acts, ref, atol=1e-5)
    assert fa.arm[:6] == ("free",) * 6 and fa.query_id[0] == "q0"
    back = FeatureActs.load(fa.save(tmp_path / "fa"))
    assert torch.equal(back.acts, fa.acts) and back.positions == NAMES


def test_encode_capture_matches_forward(sae0, sae_handle, sae_prompts, sae_dt, tmp_path):
    from interp_af.acts.write import capture

    cap = capture(sae_handle, sae_prompts, tmp_path / "cap", sites=("resid_post",), layers=[0, 1], positions=NAMES,
                  progress=False)
    fa_cap = encode_capture(cap, sae0, NAMES)
    # the capture stores the prompt's own positions (no shared completion prefix appended): causal, so equal
    fa = encode_prompts(sae_handle, sae0, sae_prompts, sae_dt, positions=NAMES)
    assert torch.allclose(fa_cap.acts, fa.acts, atol=1e-4)
    assert fa_cap.arm == fa.arm and fa_cap.query_id == fa.query_id


def test_differential_is_paired_by_query(sae0, sae_handle, sae_prompts, sae_dt, tmp_path):
    fa = encode_prompts(sae_handle, sae0, sae_prompts, sae_dt, positions=NAMES)
    diff = differential_features(fa)
    assert diff.arms == ("free", "paid")
    row = diff.top("end_user", 1).iloc[0]
    v = fa.at("end_user")[:, int(row["feature"])].double().numpy()
    free = {q: v[i] for i, (q, a) in enumerate(zip(fa.query_id, fa.arm)) if a == "free"}
    paid = {q: v[i] for i, (q, a) in enumerate(zip(fa.query_id, fa.arm)) if a == "paid"}
    qs = sorted(free)
    ref = stats.ttest_rel([free[q] for q in qs], [paid[q] for q in qs])
    assert np.isclose(row["diff"], np.mean([free[q] - paid[q] for q in qs]))
    if np.isfinite(ref.statistic):
        assert np.isclose(row["t"], ref.statistic) and np.isclose(row["p"], ref.pvalue)
    assert (diff.table["q"] >= diff.table["p"] - 1e-12).all()
    assert DifferentialFeatures.load(diff.save(tmp_path / "d.json")).table.shape == diff.table.shape
