"""``run_study``: the whole study from one config into one folder (what ``interp-af run`` calls).

Stages run in order through :func:`~interp_af.pipeline.runner.run_stages` (each skipped when its outputs
already exist for the same config), then ``summary.json`` and ``report.html`` are rebuilt from the stages'
results, which is cheap, so they always describe the folder as it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from interp_af.config import StudyConfig
from interp_af.pipeline.runner import StageRecord, run_stages


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


def contrast_roles(config: StudyConfig) -> dict[str, str]:
    """Which configured variant plays which role in the verdict table (by the registry's naming)."""
    roles: dict[str, str] = {}
    for v in config.setting.contrasts:
        if "noinfo" in v or "no-training-info" in v:
            roles.setdefault("noinfo", v)
        elif "inverted" in v:
            roles.setdefault("inverted", v)
        elif "three-tiers" in v or "rated" in v:
            roles.setdefault("rated", v)
    return roles


def run_study(config: StudyConfig, out: str | Path, *,
              on_stage: Callable[[str, int, int], None] | None = None) -> StudyResult:
    from interp_af.pipeline.stages import stage_functions
    from interp_af.report.html import write_report
    from interp_af.report.summary import build_summary

    run_dir = Path(out)
    records = run_stages(config, run_dir, stage_functions(config.stages), on_stage=on_stage)
    summaries = {r.stage: r.summary for r in records}
    summary = build_summary(summaries)
    tmp = run_dir / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    tmp.replace(run_dir / "summary.json")
    write_report(run_dir, summaries, summary, contrast_roles(config), {r.stage: r.seconds for r in records})
    return StudyResult(run_dir, summary, tuple(records))
