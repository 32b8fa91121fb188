"""Activations on disk (``interp_af.acts``): run prompts through a model handle, keep chosen sites x layers x positions.

``capture(handle, prompts, out_dir, ...)`` writes a folder of plain safetensors files plus ``manifest.json``
(format: ``FORMAT.md`` here); ``open_capture(out_dir)`` reads it back memory-mapped as ``[rows, layers, d]``
per (site, position), with per-row labels and the compliance metric in ``Capture.meta()``. Names are resolved
on first use (importing :mod:`.positions` alone does not import torch).
"""

from importlib import import_module
from typing import Any

_EXPORTS = {"Capture": "store", "open_capture": "store", "capture": "write", "DEFAULT_POSITIONS": "positions",
            "expand_positions": ("positions", "expand")}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        where = _EXPORTS[name]
        module, attr = where if isinstance(where, tuple) else (where, name)
        value = getattr(import_module(f"interp_af.acts.{module}"), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'interp_af.acts' has no attribute {name!r}")
