"""The stage runner reuses finished stages, recomputes what a config change touches, and redoes an
interrupted stage from a clean folder."""

import dataclasses

import pytest

from interp_af.config import StudyConfig
from interp_af.pipeline.runner import run_stages


def _counting_stages(calls):
    def make(name):
        def fn(ctx):
            calls.append(name)
            (ctx.stage_dir / "out.txt").write_text(name)
            return {"stage": name, "upstream": sorted(ctx.summaries)}

        return fn

    return {name: make(name) for name in ("gap", "capture", "probes")}


def test_second_run_reuses_every_stage(tmp_path):
    cfg = StudyConfig(stages=("gap", "capture", "probes"))
    calls = []
    first = run_stages(cfg, tmp_path, _counting_stages(calls))
    assert calls == ["gap", "capture", "probes"] and not any(r.reused for r in first)
    second = run_stages(cfg, tmp_path, _counting_stages(calls))
    assert calls == ["gap", "capture", "probes"] and all(r.reused for r in second)
    assert second[2].summary == {"stage": "probes", "upstream": ["capture", "gap"]}


def test_changed_config_recomputes_only_dependents(tmp_path):
    cfg = StudyConfig(stages=("gap", "capture", "probes"))
    run_stages(cfg, tmp_path, _counting_stages([]))
    calls = []
    changed = dataclasses.replace(cfg, probes=dataclasses.replace(cfg.probes, folds=3))
    records = run_stages(changed, tmp_path, _counting_stages(calls))
    assert calls == ["probes"]
    assert [r.reused for r in records] == [True, True, False]


def test_interrupted_stage_is_redone_from_a_clean_folder(tmp_path):
    cfg = StudyConfig(stages=("gap", "capture"))
    stages = _counting_stages([])

    def crash(ctx):
        (ctx.stage_dir / "partial.bin").write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_stages(cfg, tmp_path, {**stages, "capture": crash})
    assert not (tmp_path / "capture" / "done.json").exists()
    calls = []
    records = run_stages(cfg, tmp_path, _counting_stages(calls))
    assert calls == ["capture"] and [r.reused for r in records] == [True, False]
    assert not (tmp_path / "capture" / "partial.bin").exists()
