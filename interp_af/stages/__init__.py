"""The stages of a study, one file each, registered in the order a study runs them.

Each module defines its config (the TOML table, the CLI options, the API argument), its Python API function
(``gap``, ``capture``, ``probe``, ``patch``, ``steer``, ``sae``), its typed result and summary, and the report
sections it contributes, and ends by registering a :class:`~interp_af.stages.base.StageSpec`. Adding a stage:
write one such file and import it below.
"""

from interp_af.stages import gap, capture, probes, patching, steering, sae  # noqa: F401,E401 - registration order

from interp_af.stages.base import StageContext, StageSpec, get_stage, register_stage, stages  # noqa: E402

__all__ = ["StageContext", "StageSpec", "get_stage", "register_stage", "stages"]
