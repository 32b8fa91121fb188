"""A study's inputs checked before its run folder is created or any model loads, each error at ``file:line``.

:func:`interp_af.pipeline.config.load_config` checks every key's type and range as it reads the TOML. What it
cannot check from the text alone needs the machine or the model's ``config.json``: the device exists here, the
adapter, query, direction and SAE paths exist, the layers and heads the stages name exist in the model. Those
used to fail at their stage, after earlier stages had run for minutes and without the file and line;
:func:`check_study_inputs` answers them at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from interp_af.errors import InterpAFError

__all__ = ["check_study_inputs"]


def check_study_inputs(cfg: Any, config_file: str | Path | None = None, *, target: Any = None) -> None:
    """Check study ``cfg`` (as :func:`load_config` returns it) against this machine and its model's config;
    ``config_file`` (the TOML it came from) gives the errors their line."""
    from interp_af.pipeline.config import _where
    from interp_af.targets.preflight import (check_file, check_heads, check_layers, check_model_config,
                                             check_query_lengths, check_setting_files, model_shape)

    text = ""
    source = str(config_file) if config_file else "(default study)"
    if config_file:
        try:
            text = Path(config_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = ""

    def label(table: str, key: str) -> str:
        return f"{_where(source, text, table, key)}: [{table}] {key}"

    check_model_config(cfg.model, lambda k: label("model", k))
    check_setting_files(cfg.setting, lambda k: label("setting", k))
    stages = set(cfg.stages)
    if "steering" in stages and cfg.steering.direction_file:
        check_file(cfg.steering.direction_file, label("steering", "direction_file"), "direction file",
                   "a .safetensors, .npy or .json vector")
    if "sae" in stages and cfg.sae.path:
        p = cfg.sae.path
        if p.startswith((".", "/", "~")) and not Path(p).expanduser().is_dir():
            raise InterpAFError(f"{label('sae', 'path')}: SAE folder {p} does not exist; pass a folder in sae-lens "
                                "or sparsify format, or a sae-lens '<release>/<sae id>'")
    if target is None:
        from interp_af.targets import resolve

        target = resolve(cfg.model, cfg.setting)
    model_shape(target)  # a missing or weightless model folder: one line before the run folder exists
    try:
        target.queries  # noqa: B018 - the query file read (encoding, columns, emptiness) before any stage
        check_query_lengths(target)
    except InterpAFError as err:
        raise InterpAFError(f"{label('setting', 'queries')}: {err}") from None
    checks = [("capture", "layers", check_layers), ("patching", "layers", check_layers),
              ("patching", "heads", check_heads), ("steering", "layers", check_layers)]
    for stage, key, check in checks:
        if stage in stages:
            check(target, getattr(cfg.table(stage), key), label(stage, key))
