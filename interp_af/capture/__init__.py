"""Activation capture to disk: run prompts through a model handle, keep chosen sites x layers x positions.

``capture(handle, prompts, out_dir, ...)`` writes a folder of plain safetensors files plus ``manifest.json``
(format: ``FORMAT.md`` here); ``open_capture(out_dir)`` reads it back memory-mapped as ``[rows, layers, d]``
per (site, position), with per-row labels and the compliance metric in ``Capture.meta()``.
"""

from .positions import DEFAULT_POSITIONS, expand as expand_positions
from .store import Capture, open_capture
from .write import capture

__all__ = ["Capture", "DEFAULT_POSITIONS", "capture", "expand_positions", "open_capture"]
