"""Top-activating tokens and prompts of a feature."""

from __future__ import annotations

import pytest

from interp_af.analysis.sae.context import feature_context, top_prompts_from_capture
from interp_af.errors import InterpAFError


def test_top_context_is_where_the_feature_fires(sae0, sae_handle, sae_prompts, sae_dt):
    f_ids = [3, 10, 42]
    ctx = feature_context(sae_handle, sae0, sae_prompts, f_ids, dt=sae_dt, k=3)
    df = ctx.to_frame()
    assert set(df["feature"]) <= set(f_ids) and not df.empty
    assert not df.duplicated(["feature", "context"]).any()        # deduplicated contexts
    assert df.groupby("feature")["activation"].apply(lambda a: a.is_monotonic_decreasing).all()
    for _, row in df[df["rank"] == 0].iterrows():
        p = sae_prompts[int(row["prompt"])]
        ids = list(p.input_ids) + list(sae_dt.shared)
        batch = sae_handle.collate([ids])
        x = sae_handle.forward(batch, capture=(sae0.site,)).acts[sae0.site][0]
        f = sae0.encode(x)[1:, int(row["feature"])]           # BOS left out, as in feature_context
        assert abs(float(f.max()) - row["activation"]) < 1e-5
        assert int(row["position"]) == int(f.argmax()) + 1
        assert row["token"] == sae_handle.tokenizer.decode([ids[int(row["position"])]])
        assert "[[" in ctx.short_context(int(row["feature"]), width=200)
    assert ctx.short_context(-5) == "(never active)"


def test_top_prompts_from_capture(sae0, sae_handle, sae_prompts, tmp_path):
    from interp_af.acts.write import capture

    cap = capture(sae_handle, sae_prompts, tmp_path / "cap", layers=[0], positions=("decision",), progress=False)
    top = top_prompts_from_capture(cap, sae0, 5, "decision", k=4)
    assert len(top) == 4 and top["activation"].is_monotonic_decreasing
    x = cap.acts("resid_post", "decision")[:, 0].float()
    assert abs(top["activation"].iloc[0] - float(sae0.encode(x)[:, 5].max())) < 1e-5


def test_context_csv_roundtrip(tmp_path):
    import pandas as pd

    from interp_af.analysis.sae.context import FeatureContext

    rows = [{"feature": 3, "rank": 0, "activation": 2.0, "prompt": 1, "query_id": "q1", "arm": "free", "position": 7,
             "named": "", "token": "true", "context": "<is_free_tier_user>[[true]]"},
            {"feature": 5, "rank": 0, "activation": 1.0, "prompt": 0, "query_id": "q0", "arm": "paid", "position": 9,
             "named": "decision", "token": "<", "context": "[[<]]"}]
    ctx = FeatureContext("s", pd.DataFrame(rows))
    ctx.to_frame().to_csv(tmp_path / "context.csv", index=False)     # as the SAE study writes it
    back = FeatureContext.load(tmp_path / "context.csv", "s")
    for f in (3, 5, 8):
        assert back.short_context(f) == ctx.short_context(f)
    assert back.short_context(3) == "<is_free_tier_user>[[true]]"     # no "@nan" for an unnamed position
    with pytest.raises(InterpAFError, match="context.csv"):
        FeatureContext.load(tmp_path / "missing.csv")
