"""Run a study stage by stage into one folder, skipping stages whose inputs have not changed.

Each stage writes into ``<run>/<stage>/``. When it finishes, the runner writes ``<run>/<stage>/done.json`` (the
stage's config fingerprint, its wall time and a small summary) atomically, as the last act. A later run with
the same config finds the marker and reuses the stage; a changed config changes the fingerprint of exactly the
stages that read the changed tables (:data:`interp_af.config.STAGE_INPUTS`), and only those are recomputed. A
stage interrupted half-way has no marker, so its folder is cleared and it runs again.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from interp_af.config import StudyConfig

StageFn = Callable[["RunContext"], dict[str, Any]]


@dataclass
class RunContext:
    """What a stage sees: the config, the run folder, its own folder, and the summaries of earlier stages.

    ``cache`` holds objects shared between stages within one process (the loaded model handle, the twins), so
    that a full run loads the model once.
    """

    config: StudyConfig
    run_dir: Path
    stage_dir: Path
    summaries: dict[str, dict[str, Any]]
    cache: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StageRecord:
    stage: str
    fingerprint: str
    seconds: float
    reused: bool
    summary: dict[str, Any]


def _atomic_write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(obj, fh, indent=2, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_marker(stage_dir: Path) -> dict[str, Any] | None:
    marker = stage_dir / "done.json"
    if not marker.is_file():
        return None
    try:
        return json.loads(marker.read_text())
    except json.JSONDecodeError:
        return None


def run_stages(
    config: StudyConfig,
    run_dir: Path,
    stages: dict[str, StageFn],
    *,
    on_stage: Callable[[str, int, int], None] | None = None,
    cache: dict[str, Any] | None = None,
) -> list[StageRecord]:
    """Run ``config.stages`` in order with the functions in ``stages``; return one record per stage."""
    run_dir.mkdir(parents=True, exist_ok=True)
    _atomic_write_json(run_dir / "config.json", config.to_dict())
    ctx_cache: dict[str, Any] = {} if cache is None else cache
    summaries: dict[str, dict[str, Any]] = {}
    records: list[StageRecord] = []
    for i, name in enumerate(config.stages):
        if on_stage:
            on_stage(name, i, len(config.stages))
        stage_dir = run_dir / name
        fp = config.fingerprint(name)
        marker = read_marker(stage_dir)
        if marker is not None and marker.get("fingerprint") == fp:
            summaries[name] = marker.get("summary", {})
            records.append(StageRecord(name, fp, float(marker.get("seconds", 0.0)), True, summaries[name]))
            continue
        if stage_dir.exists():  # stale (other config) or interrupted: start clean
            shutil.rmtree(stage_dir)
        stage_dir.mkdir(parents=True)
        t0 = time.perf_counter()
        summary = stages[name](RunContext(config, run_dir, stage_dir, summaries, ctx_cache))
        seconds = time.perf_counter() - t0
        _atomic_write_json(stage_dir / "done.json", {"fingerprint": fp, "seconds": seconds, "summary": summary})
        summaries[name] = summary
        records.append(StageRecord(name, fp, seconds, False, summary))
    return records
