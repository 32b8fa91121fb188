"""Shared body of the acceptance tests: captured values == plain transformers, batched and padded, <= 1e-5."""

from __future__ import annotations

from pathlib import Path

import torch

from interp_af.acts import capture
from interp_af.models.metric import decision_tokens, metric_inputs
from interp_af.models.sites import SITES
from interp_af.setting.queries import benign_queries
from interp_af.setting.twins import render_arms

from .hf_ref import reference

POSITIONS = ("cue", "end_system", "end_user", "decision-2..decision")
TOL = 1e-5


def check_against_hf(handle, model_dir: Path, out: Path) -> float:
    """Capture every site at every layer of 6 prompts (3 queries x 2 arms, different lengths, batch 3 so rows
    are padded) and compare each value and the metric with an unpadded plain-transformers run."""
    import transformers as tf

    qs = benign_queries()[:3]
    prompts = render_arms(handle.tokenizer, qs, "default")
    assert len({len(p) for p in prompts}) > 1  # padding really happens
    cap = capture(handle, prompts, out, sites=SITES, positions=POSITIONS, batch_size=3, shard_rows=5,
                  progress=False)
    hf = tf.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    dt = decision_tokens(handle.tokenizer)
    meta = cap.meta()
    worst = 0.0
    arrays = {(site, spec): cap.acts(site, spec).float() for site in SITES for spec in cap.positions}
    for i, p in enumerate(prompts):
        pos = [p.positions[s] if "-" not in s else p.positions["decision"] - int(s.split("-")[1])
               for s in cap.positions]
        logits, ref = reference(hf, metric_inputs(list(p.input_ids), dt), pos)
        for site in SITES:
            for li, layer in enumerate(cap.layers):
                for pi, spec in enumerate(cap.positions):
                    got = arrays[(site, spec)][i, li]
                    diff = float((got - ref[(site, layer)][pi]).abs().max())
                    worst = max(worst, diff)
                    assert diff <= TOL, (site, layer, spec, i, diff)
        want = float(logits[dt.accept_id] - logits[dt.reject_id])
        assert abs(meta["logit_diff"][i] - want) <= TOL, (i, meta["logit_diff"][i], want)
        assert meta["complied"][i] == (want > 0)
        assert meta["at.decision"][i] == len(p) - 1
    assert list(meta["arm"]) == [p.arm for p in prompts]
    emb = cap.cue_embeddings()
    W_E = hf.get_input_embeddings().weight.detach()
    for arm in ("free", "paid"):
        p = next(q for q in prompts if q.arm == arm)
        toks = list(p.input_ids[p.positions["cue"]:p.positions["cue_end"] + 1])
        torch.testing.assert_close(emb[arm], W_E[toks].mean(0), rtol=0, atol=1e-6)
    return worst
