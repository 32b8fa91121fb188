"""Screen-then-confirm patching: the confirmed cells are the exact sweep's values on those cells, every other
cell is NaN (never measured), and the stage's summary says how many cells were patched exactly and how many
were only screened."""

from __future__ import annotations

import pytest
import torch

import interp_af as af
from interp_af.analysis.attribution import attribute
from interp_af.analysis.patching import patch_twins
from interp_af.analysis.screening import confirm, top_cells
from interp_af.errors import InterpAFError

from ._patch_helpers import handle, short_setting, twins


@pytest.fixture(scope="module")
def llama(tiny_models):
    return handle(tiny_models["llama"], "tl")


@pytest.mark.parametrize("site,by_position", [("resid_pre", True), ("head_out", False), ("mlp_out", False)])
def test_confirmed_cells_equal_the_exact_sweep(llama, site, by_position):
    tw = twins(llama, 3)
    est = attribute(llama, tw, sites=(site,), by_position={site: by_position}, progress=False)[site]
    sweep = patch_twins(llama, tw, site=site, by_position=by_position, progress=False)
    assert est.columns == sweep.columns and est.patched.shape == sweep.patched.shape
    k = 5
    res = confirm(llama, tw, est, k=k, progress=False)
    chosen = top_cells(est, k)
    assert int(res.computed.sum()) == len(chosen) == min(k, est.computed.numel())
    assert res.info["cells_confirmed"] == len(chosen)
    live_cols = {x for x in range(len(est.columns))
                 if bool(sweep.computed[:, :, x].any())}           # the exact sweep ran these columns
    assert res.info["cells_live"] == len(est.layers) * len(est.heads) * len(live_cols)
    assert res.info["cells_screened_only"] == res.info["cells_live"] - len(chosen)
    if by_position:
        assert res.info["cells_live"] < res.computed.numel()   # the prompt before the cue is exactly zero
    for i, j, x in chosen:   # the exact sweep's per-query values, on exactly these cells
        torch.testing.assert_close(res.patched[:, i, j, x], sweep.patched[:, i, j, x], atol=1e-5, rtol=0)
    assert torch.isnan(res.patched[:, ~res.computed]).all()   # the rest was never patched
    torch.testing.assert_close(res.target, sweep.target, atol=1e-5, rtol=0)
    torch.testing.assert_close(res.source, sweep.source, atol=1e-5, rtol=0)
    # the chosen cells are the screen's largest |estimate|, largest first
    mags = [abs(float(est.effect()[c])) for c in chosen]
    assert mags == sorted(mags, reverse=True)
    rest = est.effect().abs().clone()
    for c in chosen:
        rest[c] = -1
    assert float(rest.max()) <= mags[-1] + 1e-12


def test_confirm_refuses_other_twins(llama):
    tw = twins(llama, 3)
    est = attribute(llama, tw[:2], sites=("head_out",), progress=False)["head_out"]
    with pytest.raises(InterpAFError, match="confirm on the twins the estimate was computed on"):
        confirm(llama, tw, est, k=2, progress=False)


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    return short_setting(tmp_path_factory)


def test_screen_mode_summary_and_report_say_what_was_swept(tiny_models, setting, tmp_path):
    from interp_af.stages.patching import PatchStudy, report, summarize

    t = af.resolve(str(tiny_models["llama"]), **setting)
    cfg = af.PatchingConfig(mode="screen", confirm_top=4, sites=("resid_pre", "head_out"), n_boot=50,
                            attribution=("atp",))
    study = af.patch(t, cfg, progress=False)
    assert study.mode == "screen" and set(study.screened) == set(study.exact)
    s = summarize(study)
    assert s.mode == "screen"
    for key, c in s.coverage.items():
        grid = study.exact[tuple(key.split("/"))]
        assert c.cells == grid.info["cells_live"] and c.exact == 4 and c.screened_only == c.cells - 4
    total = sum(c.cells for c in s.coverage.values())
    assert f"all {total} cells from the first differing token on" in s.swept and f"({4 * len(s.coverage)} cells) were patched exactly" in s.swept
    assert f"other {total - 4 * len(s.coverage)} were only screened" in s.swept
    # the headline cell is one that was patched exactly, with the exact sweep's value
    top = s.top["denoise/resid_pre"]
    grid = study.exact[("denoise", "resid_pre")]
    i, x = grid.layers.index(top.layer), grid.columns.index(top.column)
    assert bool(grid.computed[i, 0, x])
    sweep = patch_twins(t.handle, t.patch_twins(cfg.n_queries), site="resid_pre", layers=(top.layer,),
                        n_boot=50, progress=False)
    assert abs(float(sweep.effect()[0, 0, x]) - top.effect) < 1e-3
    # the AtP check is the screen's own comparison on the confirmed denoising cells
    assert set(s.attribution["atp"].spearman) == {"resid_pre", "head_out"}
    assert len(study.checks["atp"].cells) == 8
    # saved and loaded back whole; the report names the coverage
    study.save(tmp_path / "p")
    back = PatchStudy.load(tmp_path / "p")
    assert back.mode == "screen" and set(back.screened) == set(study.screened)
    assert summarize(back) == s
    contrib = report(back, s)
    assert any(f.question == "what was patched exactly?" and f.measure == s.swept for f in contrib.findings)
    keys = {b.key for sec in contrib.sections for b in sec.figures}
    assert {"patch_resid_pre", "screen_resid_pre", "screen_head_out"} <= keys


def test_exact_mode_summary_says_everything_was_swept(tiny_models, setting):
    from interp_af.stages.patching import summarize

    t = af.resolve(str(tiny_models["llama"]), **setting)
    study = af.patch(t, af.PatchingConfig(sites=("head_out",), attribution=(), n_boot=20), progress=False)
    s = summarize(study)
    c = s.coverage["denoise/head_out"]
    assert s.mode == "exact" and c.exact == c.cells == int(study.exact[("denoise", "head_out")].computed.sum())
    assert c.screened_only == 0
    assert s.swept.startswith("exact sweep: all")


def test_screen_keeps_only_the_heads_asked_for(tiny_models, setting):
    t = af.resolve(str(tiny_models["llama"]), **setting)
    study = af.patch(t, af.PatchingConfig(mode="screen", sites=("head_out",), heads=(1, 3), confirm_top=2,
                                          attribution=(), n_boot=20), progress=False)
    est, res = study.screened[("denoise", "head_out")], study.exact[("denoise", "head_out")]
    assert est.heads == res.heads == (1, 3) and est.patched.shape[2] == 2 and int(res.computed.sum()) == 2
