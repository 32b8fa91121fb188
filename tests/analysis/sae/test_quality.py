"""SAE quality on the studied prompts: FVE, L0, dead features, and the splice with / without the error term."""

from __future__ import annotations

import torch

from interp_af.analysis.sae.quality import SAEQuality, sae_quality
from interp_af.analysis.sae.train import collect_activations, reconstruction_stats


def test_splice_with_error_term_is_exact_and_stats_match(sae1, sae_handle, sae_prompts, sae_dt, tmp_path):
    q = sae_quality(sae_handle, sae1, sae_prompts, sae_dt, positions=("cue", "decision"), batch_size=5)
    print(f"\nsplice with error term: max |delta metric| = {q.splice_err_max_abs:.2e}; "
          f"without: mean |delta| = {q.splice_noerr_mean_abs:.3e}; FVE = {q.fve:.3f}")
    assert q.splice_err_max_abs <= 1e-5
    assert q.splice_noerr_mean_abs > 10 * max(q.splice_err_max_abs, 1e-7)   # reconstruction alone does move it
    acts = collect_activations(sae_handle, sae_prompts, [sae1.site], dt=sae_dt)[sae1.site]
    ref = reconstruction_stats(sae1.sae, acts)
    assert abs(q.fve - ref["fve"]) < 1e-4 and abs(q.l0 - ref["l0"]) < 1e-4
    assert abs(q.dead_fraction - ref["dead_fraction"]) < 1e-9
    assert q.n_tokens == acts.shape[0] and q.n_prompts == len(sae_prompts)
    # the clean metric is the handle's own metric
    from interp_af.models.metric import score_logit_diff

    clean = score_logit_diff(sae_handle, [p.input_ids for p in sae_prompts], sae_dt, progress=False)
    assert abs(q.metric_clean - float(clean.mean())) < 1e-5
    assert SAEQuality.load(q.save(tmp_path / "q.json")) == q
    assert set(q.to_frame().columns) >= {"fve", "l0", "dead_fraction", "fve@cue", "l0@decision"}


def test_skip_first_zero_scores_bos(sae1, sae_handle, sae_prompts, sae_dt):
    q = sae_quality(sae_handle, sae1, sae_prompts[:2], sae_dt, skip_first=0)
    assert q.n_tokens == sum(len(p) + len(sae_dt.shared) for p in sae_prompts[:2])
    assert q.splice_err_max_abs <= 1e-5
    assert torch.isfinite(torch.tensor(q.fve))
