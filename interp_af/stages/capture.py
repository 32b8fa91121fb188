"""Stage ``capture``: activations of every prompt (every arm of every variant) to disk.

The chosen sites x layers at the chosen named positions, streamed to safetensors shards with a manifest,
resumable and checksummed (:mod:`interp_af.acts`; format in ``interp_af/acts/FORMAT.md``). Rows are
rendered variant by variant, the main variant first, so a capture alone says which variant was the main one.

API: :func:`capture` (``interp_af.acts``); CLI: ``interp-af capture``; TOML: ``[capture]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interp_af.acts.positions import DEFAULT_POSITIONS
from interp_af.models.sites import SITES
from interp_af.options import option, validate
from interp_af.report.page import Contribution, Section
from interp_af.stages.base import StageContext, StageSpec, register_stage

ACTS = "acts"


@dataclass(frozen=True)
class CaptureConfig:
    """What is captured."""

    sites: tuple[str, ...] = option(("resid_post",), "Sites to capture.", choices=SITES, min_items=1)
    layers: tuple[int, ...] = option((), "Layers to capture (ranges like 2-6 on the CLI); () = every layer.", min=0)
    positions: tuple[str, ...] = option(DEFAULT_POSITIONS, "Named positions, offsets (decision-1) or windows "
                                                           "(decision-7..decision).", min_items=1)
    batch_size: int = option(32, "Prompts per forward pass.", min=1)
    storage_dtype: str = option("", "Dtype on disk ('' = the model's).", choices=("", "float32", "float16", "bfloat16"))
    metric: bool = option(True, "Also read the compliance metric of every row (off: stop after the last "
                                "captured layer).")

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True)
class CaptureSummary:
    path: str
    rows: int
    sites: tuple[str, ...]
    layers: tuple[int, ...]
    positions: tuple[str, ...]


def capture(target: Any, out: str | Path, config: CaptureConfig | None = None, *, overwrite: bool = False,
            progress: bool = True) -> Any:
    """Capture every arm of every variant of ``target`` into ``out``; returns the
    :class:`~interp_af.acts.store.Capture` (an interrupted call resumes when repeated)."""
    from interp_af.acts.write import capture as write_capture
    from interp_af.targets import ResolvedTarget, resolve

    t = target if isinstance(target, ResolvedTarget) else resolve(target)
    c = config or CaptureConfig()
    prompts = [p for v in t.variants for p in t.prompts(v)]
    return write_capture(t.handle, prompts, out, sites=c.sites, layers=c.layers or None, positions=c.positions,
                         batch_size=c.batch_size, metric=c.metric, dtype=c.storage_dtype or None,
                         adapter=t.model_config.adapter or None, overwrite=overwrite, progress=progress)


def load(stage_dir: Path) -> Any:
    from interp_af.acts.store import open_capture

    return open_capture(stage_dir / ACTS)


def summarize(cap: Any) -> CaptureSummary:
    return CaptureSummary(f"{cap.path.parent.name}/{cap.path.name}", cap.n_rows, tuple(cap.sites), tuple(cap.layers),
                          tuple(cap.positions))


def report(cap: Any, summary: CaptureSummary) -> Contribution:
    return Contribution((Section("capture", "Activations on disk", notes=(
        f"{summary.rows} rows x {len(summary.layers)} layers x {len(summary.positions)} positions "
        f"({', '.join(summary.positions)}) of {', '.join(summary.sites)}, in {summary.path}",)),))


def _run(ctx: StageContext) -> Any:
    return capture(ctx.target, ctx.out / ACTS, ctx.config, progress=ctx.progress)


STAGE = register_stage(StageSpec(
    name="capture", config=CaptureConfig, run=_run, load=load, summarize=summarize, summary_type=CaptureSummary,
    report=report, description="activations of every prompt at chosen sites, layers and positions"))
