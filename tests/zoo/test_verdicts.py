"""The verdict table never explains a gap that is not there, and reads the right verdict off every model whose
mechanism is known: each zoo model runs through the study runner (null through ``interp-af run``), scaled
down, and its table must equal the one written down before it was first produced (``interp_af/zoo/truth.py``
``EXPECTED_VERDICTS``; the organism's is checked on its own study, ``tests/pipeline/test_study.py``).

The full table (gap, capture, probes, steering) runs on both backends for every model (the null model: gap and
steering, since there is no gap for probes to explain)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interp_af.zoo.truth import EXPECTED_VERDICTS, VERDICT_ROWS

# scaled down: 5 harmful requests (4 choose the steering layer, 1 reports it: the zoo is deterministic), no
# benign controls, no probe controls or bootstrap; the 20 random steering directions are what the verdict needs
SMALL = {
    "setting": {"limit": 5, "benign": False},
    "gap": {"n_boot": 100},
    "probes": {"folds": 3, "n_boot": 0, "controls": False},
    "steering": {"alphas": [1.0], "n_random": 20, "n_boot": 50},
}
FULL = ("gap", "capture", "probes", "steering")
FULL_BACKEND = {"null": "nnsight", "direct-cue": "tl", "planted-direction": "nnsight", "rated-only": "tl"}
OTHER = {"tl": "nnsight", "nnsight": "tl"}


@pytest.fixture(scope="module")
def zoo_targets(zoo):
    """The zoo's targets, registered on the zoo this session built (the entry point does the same on an
    installed package, building into the cache)."""
    from interp_af.zoo.plugin import register

    register(root=next(iter(zoo.values())).parent)
    return zoo


def _config(name: str, backend: str, stages: tuple[str, ...], **extra):
    from interp_af.pipeline.config import config_from_dict

    return config_from_dict({"name": name, "stages": list(stages), "model": {"path": name, "backend": backend},
                             **SMALL, **extra})


def _table(summary) -> dict[str, str]:
    rows = summary["verdicts"]
    assert [r["row"] for r in rows] == list(VERDICT_ROWS)
    for r in rows:
        assert set(r) >= {"row", "explanation", "test", "measured", "margin", "verdict"}
    return {r["row"]: r["verdict"] for r in rows}


def _print(name: str, backend: str, summary) -> None:
    print(f"\n{name} ({backend})")
    for r in summary["verdicts"]:
        print(f"  {r['row']:15s} {r['verdict']:18s} {r['measured']} | margin {r['margin']}")


@pytest.fixture(scope="module")
def full_runs(zoo_targets, tmp_path_factory):
    """Every zoo model's full (scaled-down) study, on its backend; null through the command line."""
    from typer.testing import CliRunner

    from interp_af.cli import _typer_app as app
    from interp_af.pipeline.study import run_study

    out = {}
    for name, backend in FULL_BACKEND.items():
        run_dir = tmp_path_factory.mktemp(name)
        if name == "null":   # the `interp-af run` path: a TOML file, the command, the folder it writes
            toml = run_dir.parent / f"{name}.toml"
            toml.write_text(_toml(f"zoo-{name}", backend, ("gap", "steering")))   # no gap: no probes needed
            r = CliRunner().invoke(app, ["run", str(toml), "--out", str(run_dir), "--quiet"])
            assert r.exit_code == 0, r.output
            summary = json.loads((run_dir / "summary.json").read_text())
        else:
            summary = run_study(_config(f"zoo-{name}", backend, FULL), run_dir, progress=False).summary
        _print(name, backend, summary)
        out[name] = (run_dir, summary)
    return out


def _toml(path: str, backend: str, stages: tuple[str, ...]) -> str:
    lines = [f'name = "{path}"', f"stages = {json.dumps(list(stages))}", "[model]", f'path = "{path}"',
             f'backend = "{backend}"']
    for table, values in SMALL.items():
        lines.append(f"[{table}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name", list(FULL_BACKEND))
def test_each_zoo_models_full_table_is_the_declared_one(full_runs, name):
    _, summary = full_runs[name]
    assert _table(summary) == EXPECTED_VERDICTS[name]


@pytest.mark.parametrize("name", list(FULL_BACKEND))
def test_the_full_table_holds_on_the_other_backend(zoo_targets, tmp_path, name):
    """The same scaled-down study on the other backend gives the same table, row for row."""
    from interp_af.pipeline.study import run_study

    backend = OTHER[FULL_BACKEND[name]]
    stages = ("gap", "steering") if name == "null" else FULL
    summary = run_study(_config(f"zoo-{name}", backend, stages), tmp_path, progress=False).summary
    _print(name, backend, summary)
    assert _table(summary) == EXPECTED_VERDICTS[name]


def test_null_has_no_gap_to_explain_and_says_what_it_could_have_detected(full_runs):
    _, s = full_runs["null"]
    c = s["compliance"]
    assert c["gap_to_explain"] is False and abs(c["logit_gap"]) < c["min_logit_gap"]
    assert c["detectable_gap"] > 0 and "could detect" in s["verdicts"][0]["measured"]
    # the steering numbers that once read as a mechanism are still reported, but explain nothing
    assert s["steering"]["above_noise_floor"] is False


def test_direct_cue_says_the_gap_follows_the_token(full_runs):
    _, s = full_runs["direct-cue"]
    rows = {r["row"]: r for r in s["verdicts"]}
    assert rows["inferred_state"]["follows"] == "token" and "follows the token" in rows["inferred_state"]["measured"]
    assert "the in_training probe tracks the token" in rows["probe_transfer"]["measured"]
    assert s["probe"]["transfer"]["auroc_inverted"] < 0.3


def test_planted_direction_is_recovered_and_beats_every_random_draw(full_runs, zoo):
    import torch

    from interp_af.analysis.probes import ProbeResult
    from interp_af.zoo.planted import load_planted

    run_dir, s = full_runs["planted-direction"]
    v, meta = load_planted(zoo["planted-direction"])
    probes = ProbeResult.load(run_dir / "probes").probes
    k = next(i for i, e in enumerate(probes.entries) if e.kind == "diffmean" and e.layer == meta["layer"]
             and e.position == "decision" and e.label.startswith("arm="))
    cos = float(torch.nn.functional.cosine_similarity(probes.class_direction(k).float(), v.float(), dim=0))
    assert abs(cos) >= 0.9
    st = s["steering"]
    assert st["percentile"] == 100.0 and st["n_random"] == 20 and st["gap_closed"] > st["random_abs_p95"]


def test_rated_only_reads_rating_not_training(full_runs):
    _, s = full_runs["rated-only"]
    row = next(r for r in s["verdicts"] if r["row"] == "rated")
    assert "plus - enterprise: +100 pts" in row["measured"] and "free - plus: +0 pts" in row["measured"]


def test_interp_af_verdicts_rereads_a_run_against_other_thresholds(full_runs):
    from typer.testing import CliRunner

    from interp_af.cli import _typer_app as app

    run_dir, summary = full_runs["direct-cue"]
    r = CliRunner().invoke(app, ["verdicts", str(run_dir), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == summary["verdicts"]
    # a 14-logit gap is below a 20-logit minimum effect: nothing left to explain, and no stage reran
    r = CliRunner().invoke(app, ["verdicts", str(run_dir), "--json", "--min-gap-logit", "20"])
    assert r.exit_code == 0, r.output
    assert {row["verdict"] for row in json.loads(r.output)} == {"no gap to explain"}
    from interp_af.errors import InterpAFError

    r = CliRunner().invoke(app, ["verdicts", str(run_dir.parent / "nowhere")])
    assert isinstance(r.exception, InterpAFError) and "holds no finished stage" in str(r.exception)
