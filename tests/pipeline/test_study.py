"""The whole organism study end to end on a small budget: every stage runs, summary.json holds the headline
keys, report.html is written, a second run reuses everything, and a changed table recomputes only what
depends on it."""

import dataclasses
import json

import pytest

from interp_af.pipeline.config import config_from_dict, load_config
from interp_af.pipeline.study import run_study
from interp_af.stages import stages

SMALL = {
    "name": "organism-small",
    "setting": {"limit": 24, "contrasts": ["organism-inverted", "organism-noinfo"]},
    "gap": {"n_boot": 200},
    "probes": {"folds": 3},
    "patching": {"n_queries": 2, "sites": ["resid_pre", "head_out"], "ig_queries": 1, "ig_steps": 4},
    "steering": {"alphas": [-1.0, 1.0], "n_random": 20, "layers": [1, 2]},   # the verdict needs >= 20 randoms
    "sae": {"n_queries": 4, "top_k": 2, "n_random": 2},
}

KEYS = {
    "compliance": ("free", "paid", "gap", "gap_ci", "trained_arm", "logit_gap", "gap_to_explain", "detectable_gap"),
    "probe": ("best_layer", "auroc", "control_auroc", "embed_cosine", "transfer"),
    "patching": ("top_site", "top_effect"),
    "steering": ("layer", "gap_closed", "random_abs_p95", "random_median", "noise_floor_logit"),
    "sae": ("top_feature", "gap_closed_by_ablation", "fve"),
}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    cfg = config_from_dict(SMALL)
    out = tmp_path_factory.mktemp("study")
    return cfg, out, run_study(cfg, out)


def test_every_stage_runs_and_the_summary_has_the_headline_keys(first_run):
    cfg, out, res = first_run
    assert [r.stage for r in res.records] == list(cfg.stages) and not any(r.reused for r in res.records)
    summary = json.loads((out / "summary.json").read_text())
    for section, keys in KEYS.items():
        for key in keys:
            assert summary[section][key] is not None, f"{section}.{key} missing"
    # the organism's ground truth: a large positive gap that the inverted policy reverses
    assert summary["compliance"]["gap"] > 0.4 and summary["compliance"]["gap_ci"][0] > 0
    assert summary["compliance"]["contrasts"]["organism-inverted"]["gap"] < -0.3
    assert 0.0 <= summary["probe"]["control_auroc"] <= 1.0
    # the verdict table itself, row by row, as written down for the organism before it was run
    # (interp_af/zoo/truth.py; the probe-transfer row was corrected after the first run, see there)
    from interp_af.zoo.truth import EXPECTED_VERDICTS, VERDICT_ROWS

    table = {r["row"]: r["verdict"] for r in summary["verdicts"]}
    assert list(table) == list(VERDICT_ROWS) and table == EXPECTED_VERDICTS["organism"], summary["verdicts"]
    assert summary["compliance"]["gap_to_explain"] is True and summary["compliance"]["trained_arm"] == "free"
    page = (out / "report.html").read_text()
    assert "Verdicts" in page and "figure unavailable" not in page
    assert page.count("<figcaption>") >= 8  # captions under the figures
    assert res.to_frame().shape[0] == len(cfg.stages)
    # every stage read exactly what it declared: its table, the target's if it runs on it, its input stages
    for r in res.records:
        spec = stages()[r.stage]
        assert set(r.reads) == {*spec.tables(), *spec.needs}, (r.stage, r.reads)


def test_second_run_reuses_every_stage(first_run):
    cfg, out, _ = first_run
    again = run_study(cfg, out)
    assert all(r.reused for r in again.records)
    # the verdicts read back from done.json (declared arms included) are the same table
    assert again.summary["verdicts"] == _.summary["verdicts"]


def test_changed_table_recomputes_only_its_dependents(first_run):
    cfg, out, _ = first_run
    changed = dataclasses.replace(cfg, steering=dataclasses.replace(cfg.steering, n_random=2))
    res = run_study(changed, out)
    assert {r.stage for r in res.records if not r.reused} == {"steering"}


def test_default_config_is_the_organism_study():
    assert load_config(None).model.path == "organism" and load_config(None).setting.variant == "organism"


def test_the_real_report_renders_every_figure_in_a_browser(first_run):
    """The page of a real run (not a synthetic one): as many plotly figures drawn as the page holds figure
    blocks, a clean console, nothing wider than the window."""
    import os

    from interp_af.testing.browser import check_page, find_chromium

    if find_chromium() is None:
        if os.environ.get("INTERP_AF_REQUIRE_BROWSER") == "1":
            raise RuntimeError("INTERP_AF_REQUIRE_BROWSER=1 but no Chromium: apt-get install chromium-headless-shell")
        pytest.skip("no headless Chromium (apt-get install chromium-headless-shell)")
    _, out, _ = first_run
    page = (out / "report.html").read_text()
    n = page.count('<div class="plot">')
    assert n >= 8, "every stage's figures should be on the page"
    res = check_page(out / "report.html", expected_plots=n)
    assert res.errors == (), res.explain()
    assert res.plots == res.rendered == res.divs == n and res.svgs >= n, res.explain()
    assert res.overflow_px == 0, res.explain()


def test_every_figure_of_the_page_has_its_own_stage_file(first_run):
    """Each figure on the page is also a file in its stage folder, one per figure key (two SAE sites' keys differ
    only after a dot: they must not collapse into one file)."""
    import re

    _, out, _ = first_run
    keys = re.findall(r'<figure id="fig-([^"]+)">', (out / "report.html").read_text())
    assert any(k.endswith(".1") for k in keys) and any(k.endswith(".2") for k in keys), keys
    missing = [k for k in keys if not list(out.glob(f"*/{k}.html"))]
    assert not missing, missing
