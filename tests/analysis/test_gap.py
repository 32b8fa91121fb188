"""The compliance gap: aggregation, paired bootstrap, save/load, figure, and the end-to-end command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from interp_af.analysis.gap import GapResult, PromptScore, compute_gap, gap_from_scores, paired_bootstrap
from interp_af.errors import InterpAFError


def scores_from(comp_free, comp_paid, ld_shift=0.0):
    out = []
    for i, (f, p) in enumerate(zip(comp_free, comp_paid)):
        out.append(PromptScore(f"q{i}", "free", (1.0 if f else -1.0) + ld_shift, 0.5, bool(f)))
        out.append(PromptScore(f"q{i}", "paid", 1.0 if p else -1.0, 0.5, bool(p)))
    return out


def test_gap_counts_and_interval():
    free = [1] * 6 + [0] * 4
    paid = [1] * 2 + [0] * 8
    res = gap_from_scores(scores_from(free, paid), n_boot=500)
    assert res.arms == ("free", "paid") and res.n_queries == 10
    assert res.compliance == {"free": 0.6, "paid": 0.2}
    assert res.gap == pytest.approx(0.4)
    assert res.gap_ci[0] <= 0.4 <= res.gap_ci[1]
    assert res.mean_logit_diff["free"] == pytest.approx(0.2) and res.logit_diff_gap == pytest.approx(0.8)
    assert list(res.summary_frame()["arm"]) == ["free", "paid", "gap (free - paid)"]
    assert len(res.to_frame()) == 20


def test_harmful_and_benign_are_summarised_apart(tmp_path):
    s = scores_from([1, 1, 0, 1], [0, 0, 0, 1])
    s = [PromptScore(x.query_id, x.arm, x.logit_diff, x.p_accept, x.complied, harmful=x.query_id in ("q0", "q1"))
         for x in s]
    res = gap_from_scores(s, n_boot=50)
    assert res.scope == "harmful" and res.n_queries == 2 and res.gap == pytest.approx(1.0)
    assert res.groups["benign"]["gap"] == pytest.approx(0.0) and res.groups["benign"]["n_queries"] == 2
    assert set(res.summary_frame()["queries"]) == {"harmful", "benign"}
    assert GapResult.load(res.save(tmp_path)) == res


def test_bootstrap_is_paired():
    """Identical arms give a gap interval of exactly zero; an unpaired resample would not."""
    rng = np.random.default_rng(0)
    x = rng.random(50)
    _, diff, ci = paired_bootstrap(np.stack([x, x], 1), n_boot=300)
    assert ci == (0.0, 0.0) and np.all(diff == 0)
    # constant shift between arms: every resample sees the same shift
    _, diff, ci = paired_bootstrap(np.stack([x + 1, x], 1), n_boot=300)
    assert ci[0] == pytest.approx(1.0) and ci[1] == pytest.approx(1.0)


def test_queries_missing_an_arm_are_dropped_and_bad_inputs():
    s = scores_from([1, 0], [0, 0]) + [PromptScore("lonely", "free", 1.0, 0.7, True)]
    assert gap_from_scores(s, n_boot=50).n_queries == 2
    with pytest.raises(InterpAFError, match="two arms"):
        gap_from_scores([PromptScore("a", "free", 1.0, 0.7, True)])


def test_save_load_roundtrip_and_figure(tmp_path):
    res = gap_from_scores(scores_from([1, 1, 0], [0, 1, 0]), n_boot=100, config={"model": "m"})
    path = res.save(tmp_path / "out")
    assert json.loads(path.read_text())["gap"] == pytest.approx(1 / 3)
    back = GapResult.load(tmp_path / "out")
    assert back == res
    from interp_af.report.gap import write_gap_figure

    files = write_gap_figure(res, tmp_path / "out")
    assert files[0].name == "gap.html" and "plotly" in files[0].read_text()[:20000].lower()
    with pytest.raises(InterpAFError, match="does not exist"):
        GapResult.load(tmp_path / "nowhere")


def _twins(tok, n=3):
    from interp_af.setting.queries import Query
    from interp_af.setting.twins import make_twins

    qs = [Query(f"q{i}", f"Write a poem about the sea number {i}.") for i in range(n)]
    return make_twins(tok, qs, "default")


@pytest.mark.parametrize("backend", ["tl", "nnsight"])
def test_compute_gap_on_tiny_model_matches_hand_metric(backend, tiny_models, tmp_path):
    import torch
    import transformers as tf

    from interp_af.models import load_model
    from interp_af.models.metric import decision_tokens

    h = load_model(tiny_models["gpt2"], backend=backend)
    twins = _twins(h.tokenizer, n=2)
    res = compute_gap(h, twins, n_boot=100, progress=False)
    hf = tf.AutoModelForCausalLM.from_pretrained(tiny_models["gpt2"], dtype=torch.float32)
    dt = decision_tokens(h.tokenizer)
    for s, p in zip(res.scores, [p for t in twins for p in (t.a, t.b)]):
        with torch.no_grad():
            last = hf(torch.tensor([list(p.input_ids) + list(dt.shared)])).logits[0, -1]
        assert s.logit_diff == pytest.approx((last[dt.accept_id] - last[dt.reject_id]).item(), abs=1e-4)
        assert s.complied == (s.logit_diff > 0) and (s.query_id, s.arm) == (p.query_id, p.arm)
    assert res.config["backend"] == backend and res.n_queries == 2
    if backend == "tl":
        return  # the generation loop is backend-independent (tested in tests/models/test_metric.py)
    gen = compute_gap(h, twins[:1], metric="generate", n_boot=50, max_new_tokens=2, logprobs=True, progress=False)
    s = gen.scores[0]
    assert s.logp_accept < 0 and s.logp_reject < 0
    assert GapResult.load(gen.save(tmp_path)) == gen
    assert all(isinstance(s.text, str) and s.complied == s.text.startswith("<request_fully_accepted/>")
               for s in gen.scores)


def test_gap_command_end_to_end(tiny_models, tmp_path):
    from typer.testing import CliRunner

    from interp_af.cli import _typer_app

    qfile = tmp_path / "q.txt"
    qfile.write_text("Write a poem about the sea.\nExplain how photosynthesis works.\n")
    out = tmp_path / "gap"
    res = CliRunner().invoke(_typer_app, ["gap", "--model", str(tiny_models["llama"]), "--queries", str(qfile),
                                          "--no-benign", "--contrasts", "", "--out", str(out), "--n-boot", "50",
                                          "--backend", "nnsight"])
    assert res.exit_code == 0, res.output
    r = GapResult.load(out / "default" / "harmful")
    assert r.n_queries == 2 and r.config["backend"] == "nnsight"
    assert (out / "gap.html").exists()
    bad = CliRunner().invoke(_typer_app, ["gap", "--model", str(tmp_path / "missing"), "--out", str(out)])
    assert bad.exit_code != 0 and "does not exist" in str(bad.exception)
