"""``interp-af capture``: activations of every prompt (every arm of the main variant and its contrasts) to disk.

The same function as the study's ``capture`` stage (:func:`interp_af.stages.capture.capture`) with the same
options (``[capture]``). Interrupted runs resume when rerun with the same options; a folder holding another
model's / prompt set's / config's capture is refused unless ``--overwrite``. Format:
``interp_af/acts/FORMAT.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from interp_af.stages.capture import CaptureConfig
from interp_af.targets.config import ModelConfig, SettingConfig

from ._app import app
from .options import MODEL, with_configs


@app.command()
@with_configs(model=(ModelConfig, MODEL), setting=SettingConfig, capture=CaptureConfig)
def capture(out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default: captures/<target>-<variant>)."),
            overwrite: bool = typer.Option(False, "--overwrite", help="Replace a capture of another model/prompts/config."),
            model: ModelConfig = None, setting: SettingConfig = None,  # type: ignore[assignment]
            capture: CaptureConfig = None) -> None:  # type: ignore[assignment]
    """Capture activations (sites x layers x named positions) of every prompt to safetensors + manifest."""
    from interp_af.stages.capture import capture as run_capture

    from . import common

    def legacy(p: Path | None) -> bool:  # a capture written before folders carried a marker: the writer adopts it
        return p is not None and (p / "manifest.json").is_file()

    if not legacy(out):
        common.check_out(out)
    t = common.target(model, setting)
    out = out or Path("captures") / f"{t.name}-{t.main}"
    common.preflight(t, layers={"--layers": capture.layers}, positions={"--positions": capture.positions})
    if not legacy(out):
        common.claim_out(out, what="capture")
    common.loading(t)
    cap = run_capture(t, out, capture, overwrite=overwrite)
    common.console.print(f"{cap.n_rows} rows x {len(cap.layers)} layers x {len(cap.positions)} positions x "
                         f"{len(cap.sites)} site(s) -> {cap.path}")
    if capture.metric:
        meta = cap.meta()
        by = meta.groupby(["variant", "arm"], sort=False)["complied"].mean()
        common.console.print("compliance (logit_diff > 0): " + ", ".join(
            f"{v}/{a} {100 * float(x):.1f}%" for (v, a), x in by.items()), highlight=False)
    common.done([cap.path], t)
