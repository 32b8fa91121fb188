"""The stage runner reuses finished stages, recomputes what a config change touches, redoes an interrupted stage
from a clean folder, and hands a stage only what it declared."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from interp_af.errors import InterpAFError
from interp_af.pipeline.config import StudyConfig
from interp_af.pipeline.runner import run_stages
from interp_af.stages import base


@dataclass(frozen=True)
class Note:
    stage: str
    upstream: tuple[str, ...] = ()


@pytest.fixture
def counting(monkeypatch):
    """gap / capture / probes with their real declarations and configs, but runs that only count and write."""
    calls: list[str] = []
    real = base.stages()

    def make(name: str):
        spec = real[name]

        def run(ctx):
            calls.append(name)
            ctx.config  # noqa: B018 - read its own table, as every real stage does
            up = tuple(str(ctx.input(n)) for n in spec.needs)
            (ctx.out / "out.txt").write_text(name)
            return Note(name, up)

        return dataclasses.replace(spec, run=run, load=lambda d, name=name: Note(name), summarize=lambda r: r,
                                   summary_type=Note, report=lambda r, s: None)

    fakes = {n: make(n) for n in ("gap", "capture", "probes")}
    monkeypatch.setattr(base, "_STAGES", {**real, **fakes})
    return calls


def test_second_run_reuses_every_stage(tmp_path, counting):
    cfg = StudyConfig(stages=("gap", "capture", "probes"))
    first = run_stages(cfg, tmp_path, progress=False)
    assert counting == ["gap", "capture", "probes"] and not any(r.reused for r in first)
    second = run_stages(cfg, tmp_path, progress=False)
    assert counting == ["gap", "capture", "probes"] and all(r.reused for r in second)
    assert second[2].summary == Note("probes", ("Note(stage='capture', upstream=())",))


def test_changed_config_recomputes_only_dependents(tmp_path, counting):
    cfg = StudyConfig(stages=("gap", "capture", "probes"))
    run_stages(cfg, tmp_path, progress=False)
    counting.clear()
    changed = dataclasses.replace(cfg, probes=dataclasses.replace(cfg.probes, folds=3))
    records = run_stages(changed, tmp_path, progress=False)
    assert counting == ["probes"] and [r.reused for r in records] == [True, True, False]
    counting.clear()
    changed = dataclasses.replace(changed, capture=dataclasses.replace(cfg.capture, batch_size=8))
    records = run_stages(changed, tmp_path, progress=False)
    assert counting == ["capture", "probes"], "a stage whose input stage recomputed must recompute too"


def test_interrupted_stage_is_redone_from_a_clean_folder(tmp_path, counting):
    cfg = StudyConfig(stages=("gap", "capture"))
    fake = base._STAGES["capture"]

    def crash(ctx):
        (ctx.out / "partial.bin").write_bytes(b"half")
        raise KeyboardInterrupt

    base._STAGES["capture"] = dataclasses.replace(fake, run=crash)
    with pytest.raises(KeyboardInterrupt):
        run_stages(cfg, tmp_path, progress=False)
    base._STAGES["capture"] = fake
    assert not (tmp_path / "capture" / "done.json").exists()
    counting.clear()
    records = run_stages(cfg, tmp_path, progress=False)
    assert counting == ["capture"] and [r.reused for r in records] == [True, False]
    assert not (tmp_path / "capture" / "partial.bin").exists()


def test_a_stage_cannot_read_what_it_did_not_declare(tmp_path):
    ctx = base.StageContext("steering", tmp_path, False, object(), _target=None, _inputs={})
    with pytest.raises(InterpAFError, match="did not declare uses_target"):
        ctx.target  # noqa: B018
    with pytest.raises(InterpAFError, match="without declaring it in needs"):
        ctx.input("probes")
