"""Exact activation patching: equals TransformerLens's patching helpers, skips only what is provably zero,
agrees across engines/backends, normalises and saves correctly, and rejects bad input in one line."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import pandas as pd
import pytest
import torch

from interp_af.analysis.patching import QUERY_BIN, PatchResult, patch_twins
from interp_af.errors import InterpAFError
from interp_af.models.metric import decision_tokens, metric_inputs

from ._patch_helpers import handle, twins

# A normalised effect is a float32 logit difference over the twins' gap (0.05-0.5 on these random-init models):
# its rounding noise is ~1e-5, and depends on the CPU's kernels (1.75e-5 on one machine, under 1e-5 on another).
EFF_TOL = 1e-4


@pytest.fixture(scope="module")
def llama(tiny_models):
    return handle(tiny_models["llama"], "tl")


def _tl_reference(h, tw, fn):
    """TransformerLens's own helper on the same tokens with the same normalised metric (denoising a <- b)."""
    dt = decision_tokens(h.tokenizer)
    clean = torch.tensor([metric_inputs(tw.a.input_ids, dt)])
    corrupt = torch.tensor([metric_inputs(tw.b.input_ids, dt)])
    m = h.model
    with torch.no_grad():
        clean_logits, clean_cache = m.run_with_cache(clean)
        ld_clean = clean_logits[0, -1, dt.accept_id] - clean_logits[0, -1, dt.reject_id]
        cl = m(corrupt)
        ld_corrupt = cl[0, -1, dt.accept_id] - cl[0, -1, dt.reject_id]

    def metric(logits):
        return (logits[0, -1, dt.accept_id] - logits[0, -1, dt.reject_id] - ld_corrupt) / (ld_clean - ld_corrupt)

    return fn(m, corrupt, clean_cache, metric)


def test_resid_pre_equals_transformer_lens(llama):
    from transformer_lens import patching

    tw = twins(llama, 1)[0]
    ours = patch_twins(llama, [tw], site="resid_pre", progress=False)
    # TL's helper runs one pass per cell: ask it for every layer at the positions from just before the cue on
    # (earlier cells are identical in both runs; ours reports them as exactly 0 - checked below)
    f, n = tw.diff_positions[0], len(tw.a.input_ids) + 1
    cols = list(range(f - 2, n))
    df = pd.DataFrame([(L, p) for L in range(llama.n_layers) for p in cols], columns=["layer", "pos"])
    ref = _tl_reference(llama, tw, partial(patching.generic_activation_patch, index_df=df, activation_name="resid_pre",
                                           patch_setter=patching.layer_pos_patch_setter)).reshape(llama.n_layers, -1)
    got = ours.effect()[:, 0, :]
    assert got.shape == (llama.n_layers, n)
    assert float((got[:, cols] - ref.double()).abs().max()) < 1e-4
    assert float(got[:, :f].abs().max()) == 0.0
    # the grid is not trivially flat: the cue cell at layer 0 carries the whole difference
    cue = tw.diff_positions[0]
    assert abs(float(got[0, cue]) - 1.0) < EFF_TOL
    assert ours.info["cells_computed"] < ours.info["cells_total"]  # prefix cells skipped, not computed


def test_heads_equal_transformer_lens(llama):
    from transformer_lens import patching

    tw = twins(llama, 1)[0]
    all_pos = patch_twins(llama, [tw], site="head_out", progress=False)
    ref = _tl_reference(llama, tw, patching.get_act_patch_attn_head_out_all_pos)  # [layers, heads]
    assert float((all_pos.effect()[:, :, 0] - ref.double()).abs().max()) < 1e-4
    # per position: TL's helper on a subset of cells (it runs one pass per cell), via its index_df
    by_pos = patch_twins(llama, [tw], site="head_out", by_position=True, layers=[1], progress=False)
    cols = _subset(tw)
    df = pd.DataFrame([(1, p, h) for p in cols for h in range(llama.n_heads)], columns=["layer", "pos", "head_index"])
    ref_pos = _tl_reference(llama, tw, partial(patching.generic_activation_patch, index_df=df, activation_name="z",
                                               patch_setter=patching.layer_pos_head_vector_patch_setter))
    got = torch.stack([by_pos.effect()[0, h, p] for p in cols for h in range(llama.n_heads)])
    assert float((got - ref_pos.double()).abs().max()) < 1e-4


def _subset(tw):
    """A few positions around the cue and at the end (where effects live), for TL's slow per-cell helper."""
    f, n = tw.diff_positions[0], len(tw.a.input_ids) + 1  # + the shared answer prefix
    return [f - 1, f, f + 1, f + 3, n - 2, n - 1]


def test_mlp_and_attn_out_equal_transformer_lens(llama):
    from transformer_lens import patching

    tw = twins(llama, 1)[0]
    cols = _subset(tw)
    df = pd.DataFrame([(L, p) for L in range(llama.n_layers) for p in cols], columns=["layer", "pos"])
    for site in ("mlp_out", "attn_out"):
        ours = patch_twins(llama, [tw], site=site, by_position=True, progress=False)
        ref = _tl_reference(llama, tw, partial(patching.generic_activation_patch, index_df=df, activation_name=site,
                                               patch_setter=patching.layer_pos_patch_setter))
        got = torch.stack([ours.effect()[L, 0, p] for L in range(llama.n_layers) for p in cols])
        # effects up to ~4 here: float32 noise of the logit difference scales with the effect
        assert float((got - ref.double()).abs().max()) < 1e-4 * max(1.0, float(ref.abs().max())), site


def test_cells_before_first_difference_are_zero_and_skipped(llama):
    tw = twins(llama, 1)[0]
    res = patch_twins(llama, [tw], site="resid_post", direction="noise", progress=False)
    f = tw.diff_positions[0]
    assert not bool(res.computed[:, :, :f].any())
    assert bool(res.computed[:, :, f:].all())
    assert float(res.effect()[:, :, :f].abs().max()) == 0.0
    # noising at the last layer's output of the decision position reproduces the other arm exactly
    assert abs(float(res.effect()[-1, 0, -1]) - 1.0) < EFF_TOL


@pytest.mark.parametrize("backend", ["tl", "nnsight"])
def test_handle_engine_matches_fast_engine(llama, tiny_models, backend):
    h = handle(tiny_models["llama"], backend)
    tws = twins(llama, 2)
    fast = patch_twins(llama, tws, site="resid_pre", layers=[1], progress=False)
    generic = patch_twins(h, tws, site="resid_pre", layers=[1], fast=False, progress=False)
    assert generic.info["path"] == "generic" and fast.info["path"] == "tl-prefix-cache"
    assert float((fast.patched - generic.patched).abs().max()) < 1e-4
    heads_fast = patch_twins(llama, tws, site="head_out", layers=[0], progress=False)
    heads_gen = patch_twins(h, tws, site="head_out", layers=[0], fast=False, progress=False)
    assert float((heads_fast.patched - heads_gen.patched).abs().max()) < 1e-4


def test_multi_query_axis_and_intervals(llama):
    tws = twins(llama, 3)
    res = patch_twins(llama, tws, site="resid_pre", n_boot=200, progress=False)
    assert QUERY_BIN in res.columns
    cue_col = next(i for i, c in enumerate(res.columns) if "→" in c)  # the label "true→false" marks the cue
    eff = res.effect()
    assert abs(float(eff[0, 0, cue_col]) - 1.0) < EFF_TOL
    lo, hi = res.interval()
    assert bool((lo <= eff + 1e-9).all()) and bool((eff <= hi + 1e-9).all())
    # averaging is a ratio of means over queries
    p, t, s = res.patched[:, 0, 0, -1], res.target, res.source
    assert abs(float(eff[0, 0, -1]) - float((p.mean() - t.mean()) / (s.mean() - t.mean()))) < 1e-9


def test_save_load_roundtrip_and_frame(llama, tmp_path):
    res = patch_twins(llama, twins(llama, 2), site="mlp_out", progress=False)
    res.save(tmp_path / "p")
    back = PatchResult.load(tmp_path / "p")
    assert torch.equal(back.patched, res.patched) and back.columns == res.columns and back.layers == res.layers
    df = back.to_frame()
    assert len(df) == len(res.layers) * len(res.heads) * len(res.columns)
    assert {"layer", "head", "column", "effect", "lo", "hi"} <= set(df.columns)


def test_bad_inputs_are_one_line_errors(llama):
    tw = twins(llama, 1)[0]
    bad = replace(tw, b=replace(tw.b, input_ids=tw.b.input_ids + (5,)), aligned=False, reason="lengths differ")
    with pytest.raises(InterpAFError, match="q0.*not aligned") as e:
        patch_twins(llama, [bad], progress=False)
    assert "\n" not in str(e.value)
    with pytest.raises(InterpAFError, match="layer"):
        patch_twins(llama, [tw], layers=[llama.n_layers], progress=False)
    with pytest.raises(InterpAFError, match="head"):
        patch_twins(llama, [tw], site="head_out", heads=[99], progress=False)
    with pytest.raises(InterpAFError, match="site"):
        patch_twins(llama, [tw], site="nope", progress=False)


def test_heatmap_figures(llama, tmp_path):
    from interp_af.report.patching import patch_heatmap, write_figure

    tw = twins(llama, 1)[0]
    res = patch_twins(llama, [tw], site="resid_pre", progress=False)
    fig = patch_heatmap(res)
    x = list(fig.data[0].x)
    assert any("→" in c for c in x)              # the cue column is labelled with both arms' tokens
    assert len(x) < len(res.columns)             # the all-zero prefix is trimmed off
    assert len(fig.data[0].z) == len(res.layers)
    heads = patch_heatmap(patch_twins(llama, [tw], site="head_out", progress=False))
    assert list(heads.data[0].x) == [f"H{h}" for h in range(llama.n_heads)]
    paths = write_figure(fig, tmp_path, "heat")
    assert paths[0].read_text().count("plotly") > 10  # plotly.js embedded: opens offline


def test_cli_patch_and_steer(tiny_models, tmp_path):
    from typer.testing import CliRunner

    from interp_af.cli._app import app
    from interp_af.setting.prompts import register_variant

    from ._patch_helpers import QUERIES, ShortVariant

    register_variant(ShortVariant(), overwrite=True)
    qfile = tmp_path / "q.txt"
    qfile.write_text("\n".join(q.text for q in QUERIES[:2]))
    common = ["--model", str(tiny_models["llama"]), "--variant", "short-test", "--queries", str(qfile),
              "--contrasts", "", "--no-benign"]
    r = CliRunner().invoke(app, ["patch", *common, "--sites", "resid_pre,head_out", "--layers", "1",
                                 "--directions", "denoise", "--attribution", "atp", "--validate-k", "5",
                                 "--out", str(tmp_path / "p")])
    assert r.exit_code == 0, r.output
    assert PatchResult.load(tmp_path / "p" / "denoise_resid_pre").site == "resid_pre"
    assert (tmp_path / "p" / "patch_head_out.html").exists()
    assert (tmp_path / "p" / "attribution_atp.csv").exists() and (tmp_path / "p" / "attribution.html").exists()
    r = CliRunner().invoke(app, ["steer", *common, "--layers", "1", "--alphas", "-1,1", "--n-random", "1",
                                 "--generate", "2", "--out", str(tmp_path / "s")])
    assert r.exit_code == 0, r.output
    for name in ("steer.json", "steer.csv", "steering.html", "steer_study.json"):
        assert (tmp_path / "s" / name).exists(), name
    import json

    assert len(json.loads((tmp_path / "s" / "steer_study.json").read_text())["generations"]) == 2
    bad = CliRunner().invoke(app, ["patch", *common, "--layers", "0,x", "--out", str(tmp_path / "b")])
    assert bad.exit_code != 0 and "--layers" in str(bad.exception or bad.output)


@pytest.mark.parametrize("arch", ["qwen2", "gemma2", "gpt2"])
def test_other_architectures(tiny_models, arch):
    """Every architecture (TL fast path where TL has a HookedTransformer, handle engine through the
    TransformerBridge for Gemma 2): the cue at layer 0 carries the whole difference, earlier cells are 0."""
    h = handle(tiny_models[arch], "tl")
    tw = twins(h, 1)[0]
    res = patch_twins(h, [tw], site="resid_pre", layers=[0], progress=False)
    f = tw.diff_positions[0]
    assert abs(float(res.effect()[0, 0, f]) - 1.0) < 1e-4
    assert float(res.effect()[0, 0, :f].abs().max()) == 0.0
    assert float(res.effect()[0, 0, f + 1:].abs().max()) < 1e-4  # at layer 0 only the cue token differs


def test_axis_anchored_on_cue_when_system_prompts_differ(llama):
    """Paraphrased system prompts (different lengths before the cue): the axis aligns on the cue."""
    from dataclasses import dataclass

    from interp_af.setting.twins import make_twins
    from interp_af.setting.types import Conversation

    from ._patch_helpers import QUERIES, ShortVariant

    @dataclass(frozen=True)
    class Paraphrased(ShortVariant):
        def conversation(self, query, arm):
            c = super().conversation(query, arm)
            extra = " It is rated by contractors." * int(query.id[-1])
            return Conversation(system=c.system + extra, user=c.user, cue=c.cue, cue_in=c.cue_in,
                                cue_anchor=c.cue_anchor, arm=c.arm, meta=c.meta)

    tws = make_twins(llama.tokenizer, QUERIES[:3], Paraphrased())
    assert len({len(t.a.input_ids) for t in tws}) == 3
    res = patch_twins(llama, tws, site="resid_pre", layers=[0], n_boot=50, progress=False)
    assert "<before cue>" in res.columns and QUERY_BIN in res.columns
    cue = next(i for i, c in enumerate(res.columns) if c.startswith("cue+0:") and "→" in c)
    assert abs(float(res.effect()[0, 0, cue]) - 1.0) < EFF_TOL
    assert float(res.effect()[0, 0, res.columns.index("<before cue>")]) == 0.0
