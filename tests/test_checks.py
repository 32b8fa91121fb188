"""Sizes and numbers: nonsense (0, negative, NaN, bool) is one line naming the argument, before any model work.

The handle passed below is a bare ``object()``: any attempt to use it (load, forward, tokenizer) would raise
``AttributeError``, so each case proves the check runs first."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp_af import checks
from interp_af.errors import InterpAFError

H = object()          # touching it in any way fails with AttributeError, not InterpAFError
T = [object()]        # a non-empty "twins" list that is never looked at


def _cases():
    from interp_af.analysis import attribution, effects, gap, patching, steering
    from interp_af.analysis.probes import ProbeConfig
    from interp_af.analysis.sae import _run, attribution as sae_attr, context, features, intervene, quality, study
    from interp_af.analysis.sae.train import SAETrainConfig, collect_activations, train_saes
    from interp_af.acts import capture
    from interp_af.models import metric
    from interp_af.setting.queries import benign_queries, load_queries

    d = torch.ones(4)
    return [
        ("batch_size", lambda: capture(H, [], "/nonexistent/x", batch_size=0)),
        ("shard_rows", lambda: capture(H, [], "/nonexistent/x", shard_rows=-3)),
        ("n_boot", lambda: gap.compute_gap(H, T, n_boot=0)),
        ("n_boot", lambda: gap.compute_gap(H, T, n_boot=-1)),
        ("level", lambda: gap.compute_gap(H, T, level=1.5)),
        ("batch_size", lambda: gap.compute_gap(H, T, batch_size=0)),
        ("temperature", lambda: gap.compute_gap(H, T, temperature=-1.0)),
        ("max_new_tokens", lambda: gap.compute_gap(H, T, max_new_tokens=0)),
        ("temperature", lambda: gap.score_prompts(H, [], temperature=float("nan"))),
        ("n_boot", lambda: gap.paired_bootstrap(np.ones((3, 2)), n_boot=0)),
        ("n_boot", lambda: gap.gap_from_scores([], n_boot=-5)),
        ("batch_size", lambda: metric.score_logit_diff(H, [], H, batch_size=0)),
        ("batch_size", lambda: metric.completion_logprob(H, [], [1], batch_size=-1)),
        ("temperature", lambda: metric.generate_check(H, [], temperature=-0.5)),
        ("max_new_tokens", lambda: metric.generate_check(H, [], max_new_tokens=0)),
        ("batch_size", lambda: patching.patch_twins(H, T, batch_size=0)),
        ("n_boot", lambda: patching.patch_twins(H, T, n_boot=-1)),
        ("n_boot", lambda: effects.effect_interval(torch.ones(3, 1), torch.ones(3), torch.ones(3), n_boot=-2)),
        ("level", lambda: effects.effect_interval(torch.ones(3, 1), torch.ones(3), torch.ones(3), level=0.0)),
        ("n_boot", lambda: effects.bootstrap_weights(5, 0)),
        ("steps", lambda: attribution.attribute(H, T, steps=0)),
        ("n_boot", lambda: attribution.attribute(H, T, n_boot=-1)),
        ("k", lambda: attribution.validate_attribution(H, T, {}, k=0)),
        ("batch_size", lambda: attribution.validate_attribution(H, T, {}, batch_size=0)),
        ("batch_size", lambda: steering.steer(H, T, d, layers=[0], batch_size=0)),
        ("n_random", lambda: steering.steer(H, T, d, layers=[0], n_random=-1)),
        ("n_boot", lambda: steering.steer(H, T, d, layers=[0], n_boot=-1)),
        ("n_random", lambda: steering.control_directions(d, n_random=-1)),
        ("batch_size", lambda: steering.mean_difference(H, T, layer=0, batch_size=0)),
        ("max_new_tokens", lambda: steering.generate_steered(H, [], None, layers=[0], max_new_tokens=0)),
        ("alpha", lambda: steering.generate_steered(H, [], None, layers=[0], alpha=float("inf"))),
        ("n_folds", lambda: ProbeConfig(n_folds=1)),
        ("n_boot", lambda: ProbeConfig(n_boot=-1)),
        ("n_jobs", lambda: ProbeConfig(n_jobs=0)),
        ("val_frac", lambda: ProbeConfig(val_frac=0.0)),
        ("Cs", lambda: ProbeConfig(Cs=(0.1, -1.0))),
        ("d_sae", lambda: SAETrainConfig(layers=(0,), d_sae=0)),
        ("k", lambda: SAETrainConfig(layers=(0,), k=0)),
        ("steps", lambda: SAETrainConfig(layers=(0,), steps=-1)),
        ("batch_size", lambda: SAETrainConfig(layers=(0,), batch_size=0)),
        ("lr", lambda: SAETrainConfig(layers=(0,), lr=0.0)),
        ("holdout", lambda: SAETrainConfig(layers=(0,), holdout=1.0)),
        ("batch_size", lambda: train_saes(H, [], "/nonexistent", SAETrainConfig(layers=(0,)), batch_size=0)),
        ("batch_size", lambda: collect_activations(H, [], [], batch_size=0)),
        ("steps", lambda: study.StudyConfig(steps=0)),
        ("n_random", lambda: study.StudyConfig(n_random=-1)),
        ("steps", lambda: sae_attr.attribute_features(H, H, [], H, steps=0)),
        ("batch_size", lambda: sae_attr.attribute_features(H, H, [], H, batch_size=0)),
        ("k", lambda: context.feature_context(H, H, [], [0], k=0)),
        ("k", lambda: context.top_prompts_from_capture(H, H, 0, k=0)),
        ("batch_size", lambda: features.encode_prompts(H, H, [], H, batch_size=0)),
        ("n_random", lambda: intervene.intervene_features(H, H, [], H, [0], n_random=-1)),
        ("batch_size", lambda: quality.sae_quality(H, H, [], H, batch_size=0)),
        ("n_boot", lambda: _run.paired_gap(np.ones(2), ["a", "b"], ["q", "q"], ("a", "b"), n_boot=0)),
        ("limit", lambda: load_queries(limit=0)),
        ("limit", lambda: load_queries(limit=-3)),
        ("limit", lambda: benign_queries(limit=0)),
        ("batch_size", lambda: capture(H, [], "/nonexistent/x", batch_size=True)),   # a bool is not 1
    ]


CASES = _cases()


@pytest.mark.parametrize("name,call", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_nonsense_numbers_are_refused_first(name, call):
    with pytest.raises(InterpAFError) as err:
        call()
    msg = str(err.value)
    assert "\n" not in msg and f"{name}=" in msg, msg


def test_helpers():
    assert checks.positive_int(np.int64(3), "n") == 3
    assert checks.nonneg_float(0, "t") == 0.0
    assert checks.fraction(0.95, "level") == 0.95
    assert checks.fraction(0.0, "holdout", lo_open=False) == 0.0
    assert checks.finite_floats((1, -2.5), "alphas") == (1.0, -2.5)
    for bad in (1.5, "3", None, True):
        with pytest.raises(InterpAFError, match="not a whole number"):
            checks.positive_int(bad, "batch_size")
    with pytest.raises(InterpAFError, match="not a list of numbers"):
        checks.finite_floats("1,2", "alphas")
    with pytest.raises(InterpAFError, match="alphas is empty"):
        checks.finite_floats([], "alphas")
