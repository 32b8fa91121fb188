"""``run_study``: the whole study from one config into one folder (what ``interp-af run`` calls).

Stages run in order through :func:`~interp_af.pipeline.runner.run_stages` (each skipped when its inputs have
not changed), then ``summary.json`` and ``report.html`` are rebuilt from the stages' results and summaries,
which is cheap, so they always describe the folder as it is. The verdict table is read against the study's
``[verdicts]`` thresholds (:class:`~interp_af.report.verdicts.VerdictConfig`), which no stage reads: changing
them rebuilds the table and reruns nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from interp_af.pipeline.runner import StageRecord, run_stages
from interp_af.stages.base import StageSpec, get_stage
from interp_af.stages.util import write_json


@dataclass(frozen=True)
class StudyResult:
    """Where everything went, the headline numbers, and each stage's record (time, reused or not)."""

    run_dir: Path
    summary: dict[str, Any]
    records: tuple[StageRecord, ...]

    @property
    def report(self) -> Path:
        return self.run_dir / "report.html"

    def to_frame(self):
        """One row per stage: seconds, reused, fingerprint."""
        import pandas as pd

        return pd.DataFrame([{"stage": r.stage, "seconds": r.seconds, "reused": r.reused,
                              "fingerprint": r.fingerprint} for r in self.records])


def _write_stage_figures(spec: StageSpec, result: Any, summary: Any, stage_dir: Path) -> None:
    """Each figure of a stage's report contribution, also as a file in the stage's folder (one shared
    ``plotly.min.js`` per run folder, referenced by a relative path)."""
    from interp_af.report.figures import write_figure

    for section in spec.report(result, summary).sections:
        for block in section.figures:
            if block.figure is not None:
                # the suffix is given: a key like "sae_attribution_resid_post.1" must not lose ".1" as a suffix
                # (two SAEs' figures would share one file)
                write_figure(block.figure, stage_dir / f"{block.key}.html", js=stage_dir.parent / "plotly.min.js")


def _header(config: Any, run_dir: Path, records: list[StageRecord], config_file: str) -> Any:
    import json

    from interp_af.report.page import PageHeader

    t = json.loads((run_dir / "target.json").read_text()) if (run_dir / "target.json").exists() else {}
    seeds = {name: config.table(name).seed for name in config.stages if hasattr(config.table(name), "seed")}
    note = t.get("weights_note") or ""
    return PageHeader.collect(
        model=f"{config.model.path} ({config.model.backend}, {config.model.dtype}"
              f"{', adapter ' + config.model.adapter if config.model.adapter else ''})" + (f"; {note}" if note else ""),
        weights_hash=t.get("weights_sha256", "") or "not recorded (no stage loaded the model in this folder)",
        target=f"{t.get('target', config.name)}: variant {config.setting.variant}; contrasts "
               f"{', '.join(config.setting.contrasts or ()) or 'none'}",
        config_file=config_file, seeds=seeds, device=t.get("device", config.model.device),
        extra=[("stages", ", ".join(f"{r.stage} {r.seconds:.1f} s{' (reused)' if r.reused else ''}" for r in records))])


def run_study(config: Any, out: str | Path, *, target: Any = None, progress: bool = True,
              on_stage: Callable[[str, int, int], None] | None = None, config_file: str = "",
              inline: bool = False, allow_foreign: bool = False) -> StudyResult:
    """Run every stage of ``config`` into ``out``; write ``summary.json`` and ``report.html`` there.
    ``inline``: a single-file report (plotly.js inside it) instead of one sharing ``plotly.min.js``. A second
    run into a folder that a running one holds is refused in one line (the folder's writer lock)."""
    from interp_af import owned
    from interp_af.pipeline.config import resolve_defaults
    from interp_af.pipeline.runner import claim_run_dir

    config = resolve_defaults(config)
    run_dir = Path(out)
    claim_run_dir(run_dir, allow_foreign=allow_foreign)
    with owned.writer_lock(run_dir, what="run"):
        return _run_locked(config, run_dir, target=target, progress=progress, on_stage=on_stage,
                           config_file=config_file, inline=inline, allow_foreign=allow_foreign)


def _run_locked(config: Any, run_dir: Path, *, target: Any, progress: bool,
                on_stage: Callable[[str, int, int], None] | None, config_file: str, inline: bool,
                allow_foreign: bool) -> StudyResult:
    from interp_af.report.page import write_page
    from interp_af.report.summary import build_summary

    records = run_stages(config, run_dir, target=target, progress=progress, on_stage=on_stage,
                         write_figures=_write_stage_figures, allow_foreign=allow_foreign)
    summaries = {r.stage: r.summary for r in records}
    summary = build_summary(summaries, config.verdicts)
    write_json(run_dir / "summary.json", summary)
    sections, findings = [], []
    for r in records:
        spec = get_stage(r.stage)
        part = spec.report(spec.load(run_dir / r.stage), r.summary)
        sections += part.sections
        findings += part.findings
    write_page(run_dir / "report.html", _header(config, run_dir, records, config_file or "(default study)"),
               summary["verdicts"], findings, sections, inline=inline)
    return StudyResult(run_dir, summary, tuple(records))


def verdicts_of(run_dir: str | Path, verdicts: Any = None) -> list[dict[str, str]]:
    """The verdict table of a finished run folder, re-read against ``verdicts`` (a
    :class:`~interp_af.report.verdicts.VerdictConfig`; None = the defaults) from the stages' summaries in
    their ``done.json``: no stage reruns, nothing is written."""
    import json

    from interp_af.errors import InterpAFError
    from interp_af.pipeline.runner import DONE
    from interp_af.report.verdicts import verdict_table
    from interp_af.stages.base import stages

    run = Path(run_dir)
    summaries = {}
    for name, spec in stages().items():
        done = run / name / DONE
        if done.is_file():
            summaries[name] = spec.read_summary(json.loads(done.read_text()).get("summary", {}))
    if not summaries:
        raise InterpAFError(f"{run} holds no finished stage (no <stage>/{DONE}); pass a folder `interp-af run` wrote")
    return verdict_table(summaries, verdicts)
