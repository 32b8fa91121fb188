"""``run_study``: the whole study from one config into one folder (what ``interp-af run`` calls).

Stages run in order through :func:`~interp_af.pipeline.runner.run_stages` (each skipped when its inputs have
not changed), then ``summary.json`` and ``report.html`` are rebuilt from the stages' results and summaries,
which is cheap, so they always describe the folder as it is.
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
    """Each figure a stage's report sections hold, also as a file in the stage's folder."""
    from interp_af.report.figures import write_figure

    for section in spec.sections(result, summary):
        for block in section.figures:
            write_figure(block.figure, stage_dir / block.key)


def run_study(config: Any, out: str | Path, *, target: Any = None, progress: bool = True,
              on_stage: Callable[[str, int, int], None] | None = None) -> StudyResult:
    """Run every stage of ``config`` into ``out``; write ``summary.json`` and ``report.html`` there."""
    from interp_af.pipeline.config import resolve_defaults
    from interp_af.report.html import write_report
    from interp_af.report.summary import build_summary, verdict_rows

    config = resolve_defaults(config)
    run_dir = Path(out)
    records = run_stages(config, run_dir, target=target, progress=progress, on_stage=on_stage,
                         write_figures=_write_stage_figures)
    summaries = {r.stage: r.summary for r in records}
    summary = build_summary(summaries)
    write_json(run_dir / "summary.json", summary)
    sections = []
    for r in records:
        spec = get_stage(r.stage)
        sections += spec.sections(spec.load(run_dir / r.stage), r.summary)
    write_report(run_dir, sections, verdict_rows(summaries), {r.stage: r.seconds for r in records})
    return StudyResult(run_dir, summary, tuple(records))
