"""Run a study stage by stage into one folder, skipping stages whose inputs have not changed.

Each stage writes into ``<run>/<stage>/``. When it finishes, the runner writes ``<run>/<stage>/done.json`` (the
stage's fingerprint, its wall time, its summary, and which inputs it read) atomically, as the last act. A later
run with the same inputs finds the marker and reuses the stage; a stage interrupted half-way has no marker, so
its folder is cleared and it runs again.

The fingerprint of a stage hashes exactly what the stage is handed (:class:`~interp_af.stages.base.StageSpec`):
its own table, ``[model]`` and ``[setting]`` when it runs on the target, and the fingerprints of the stages
whose results it reads. The :class:`~interp_af.stages.base.StageContext` it runs in hands out nothing else, so
a stage cannot depend on a table its fingerprint misses.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from interp_af.stages.base import StageContext, StageSpec, get_stage
from interp_af.stages.util import write_json

DONE = "done.json"


@dataclass(frozen=True)
class StageRecord:
    stage: str
    fingerprint: str
    seconds: float
    reused: bool
    summary: Any                  # the stage's typed summary
    reads: tuple[str, ...] = ()   # the inputs it used (tables and earlier stages)


def fingerprint(config: Any, stage: str, upstream: dict[str, str] | None = None) -> str:
    """Hash of everything ``stage`` is handed: its tables' values and its inputs' fingerprints."""
    spec = get_stage(stage)
    if upstream is None:
        upstream = {}
        for need in spec.needs:
            upstream[need] = fingerprint(config, need)
    parts = {"stage": stage, "tables": {t: dataclasses.asdict(config.table(t)) for t in spec.tables()},
             "needs": {n: upstream[n] for n in spec.needs}}
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def read_marker(stage_dir: Path) -> dict[str, Any] | None:
    marker = stage_dir / DONE
    if not marker.is_file():
        return None
    try:
        return json.loads(marker.read_text())
    except json.JSONDecodeError:
        return None


def claim_run_dir(run_dir: Path, *, allow_foreign: bool = False) -> Path:
    """The run folder, owned by the toolkit: created, or accepted when empty or already a run folder (one
    written before ownership markers existed is recognised by its ``config.json``); a folder holding other
    files is refused in one line unless ``allow_foreign`` (then those files are never touched)."""
    from interp_af import owned

    if run_dir.is_dir() and owned.owner(run_dir) is None and (run_dir / "config.json").is_file() and \
            any((run_dir / s / DONE).is_file() for s in _known_stages()):
        owned.adopt_dir(run_dir, what="run")   # a run folder of an earlier version: its own stage folders
    return owned.claim_dir(run_dir, what="run", allow_foreign=allow_foreign,
                           hint="choose a new or empty --out folder, or pass --allow-foreign to write beside "
                                "those files (they are never deleted)")


def _adopt_tree(root: Path, what: str) -> None:
    """Mark a stage folder written before ownership markers existed (recognised by its ``done.json``), and
    every folder inside it, as the toolkit's."""
    from interp_af import owned

    for d in [root, *(p for p in root.rglob("*") if p.is_dir() and not p.is_symlink())]:
        owned.adopt_dir(d, what=what)


def _known_stages() -> list[str]:
    from interp_af.stages import stages

    return list(stages())


def _clear(stage_dir: Path) -> None:
    """Remove a stale or interrupted stage folder, as far as the toolkit wrote it; a stage folder holding
    anything else is refused in one line (it was checked before any stage ran)."""
    from interp_af import owned
    from interp_af.errors import InterpAFError

    kept = owned.remove_owned(stage_dir)
    if kept:
        raise InterpAFError(f"{kept[0]} is inside stage folder {stage_dir} but was not written by interp_af; move it "
                            "away and run again (nothing was deleted)")


def run_stages(config: Any, run_dir: Path, *, target: Any = None, progress: bool = True,
               on_stage: Callable[[str, int, int], None] | None = None,
               write_figures: Callable[[StageSpec, Any, Any, Path], None] | None = None,
               allow_foreign: bool = False) -> list[StageRecord]:
    """Run ``config.stages`` in order; return one record per stage. ``target``: an already resolved target (else
    one is resolved from ``[model]`` + ``[setting]`` when a stage first needs it, and shared by all stages).
    ``write_figures(spec, result, summary, stage_dir)`` is called after each computed stage.

    Before anything runs, every stage folder that will be recomputed is checked to hold only what the toolkit
    wrote (one line naming the first foreign file otherwise): a stale result is removed, a user's file never."""
    from interp_af import owned
    from interp_af.targets import resolve

    from interp_af import atomic

    claim_run_dir(run_dir, allow_foreign=allow_foreign)
    rec = owned.owner(run_dir)
    # a run killed with -9 leaves the temporary file of the write it was in (summary.json, a stage's result):
    # ours by name and PID, never whole; cleared at resume (a stage folder redone is cleared as a whole anyway)
    atomic.remove_stale_temps(run_dir, keep=rec.foreign if rec is not None else ())
    fps_all: dict[str, str] = {}
    for name in config.stages:
        fps_all[name] = fingerprint(config, name, fps_all)
        marker = read_marker(run_dir / name)
        if marker is None or marker.get("fingerprint") != fps_all[name]:
            if (run_dir / name).exists() and owned.owner(run_dir / name) is None and marker is not None:
                _adopt_tree(run_dir / name, f"stage {name}")   # a finished stage of an earlier version
            owned.check_removable(run_dir / name)
    write_json(run_dir / "config.json", config.to_dict())
    shared: dict[str, Any] = {"target": target}
    results: dict[str, Any] = {}
    fps: dict[str, str] = {}
    records: list[StageRecord] = []

    def get_target() -> Any:
        if shared["target"] is None:
            shared["target"] = resolve(config.model, config.setting, progress=progress)
        return shared["target"]

    def loader(name: str) -> Callable[[], Any]:
        def load() -> Any:
            if name not in results:
                results[name] = get_stage(name).load(run_dir / name)
            return results[name]

        return load

    for i, name in enumerate(config.stages):
        spec = get_stage(name)
        if on_stage:
            on_stage(name, i, len(config.stages))
        stage_dir = run_dir / name
        fp = fingerprint(config, name, fps)
        fps[name] = fp
        marker = read_marker(stage_dir)
        if marker is not None and marker.get("fingerprint") == fp:
            summary = spec.read_summary(marker.get("summary", {}))
            records.append(StageRecord(name, fp, float(marker.get("seconds", 0.0)), True, summary,
                                       tuple(marker.get("reads", ()))))
            continue
        _clear(stage_dir)  # stale (other inputs) or interrupted: start clean
        owned.claim_dir(stage_dir, what=f"stage {name}")
        ctx = StageContext(name, stage_dir, progress, config.table(name),
                           _target=get_target if spec.uses_target else None,
                           _inputs={n: loader(n) for n in spec.needs})
        t0 = time.perf_counter()
        result = spec.run(ctx)
        results[name] = result
        summary = spec.summarize(result)
        if write_figures is not None:
            write_figures(spec, result, summary, stage_dir)
        seconds = time.perf_counter() - t0
        reads = tuple(sorted(ctx.reads))
        write_json(stage_dir / DONE, {"fingerprint": fp, "seconds": seconds, "reads": list(reads),
                                      "summary": dataclasses.asdict(summary)})
        records.append(StageRecord(name, fp, seconds, False, summary, reads))
    t = shared["target"]
    if t is not None and t.loaded:
        write_json(run_dir / "target.json", target_record(t))
    return records


def target_record(t: Any) -> dict[str, Any]:
    """What the run studied: the target, where its weights came from, and a fingerprint of those weights."""
    from interp_af.acts.identity import find_module, weights_fingerprint

    h = t.handle
    return {"target": t.name, "model": t.model_config.path, "backend": t.model_config.backend,
            "adapter": t.model_config.adapter, "dtype": t.model_config.dtype, "device": str(h.device),
            "weights_sha256": weights_fingerprint(find_module(h)), "weights_note": t.target.weights_note,
            "n_layers": h.n_layers, "d_model": h.d_model}

