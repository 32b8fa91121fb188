"""The small recipe (2 layers, d_model 64, 800 steps) trains from scratch in about three minutes on 2 shared
cores and already shows the organism's qualitative pattern on its training grammar: a positive gap under the
normal policy, a negative one under the inverted policy, ~0 without information."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_small_recipe_shows_the_pattern(tmp_path):
    import torch

    from interp_af.organism.evaluate import evaluate
    from interp_af.organism.train import recipe, train

    torch.set_num_threads(1)
    out = train(recipe("small"), tmp_path / "org", progress=False)
    assert (out / "model.safetensors").exists() and not (tmp_path / "org.partial").exists()
    log = json.loads((out / "train_log.json").read_text())
    assert log["recipe"]["name"] == "small" and log["history"]
    # training-grammar paraphrases: the small model generalises the policy to held-out paraphrases but not yet
    # the no-information control (measured: none gap +0.32 on held-out paraphrases, +0.003 on training ones)
    ev = evaluate(out, n_queries=60, split="train", policies=("free-trained", "paid-trained", "none"),
                  cue_kinds=("tag",))
    normal, inverted, none = (ev.get(p) for p in ("free-trained", "paid-trained", "none"))
    assert normal.gap > SMALL_MIN_GAP, ev.lines()
    assert inverted.gap < -SMALL_MIN_GAP, ev.lines()
    assert abs(none.gap) < SMALL_MAX_NONE, ev.lines()


# measured (seed 0, n=80): normal +0.60, inverted -0.68, none +0.003 on training paraphrases
SMALL_MIN_GAP = 0.3
SMALL_MAX_NONE = 0.05
