"""Targets: what a study runs on (model + prompts + defaults), in one registry with one resolver.

>>> from interp_af.targets import resolve
>>> t = resolve("smollm2-135m-instruct", limit=8)      # doctest: +SKIP
>>> t.handle, t.twins(), t.dt                           # doctest: +SKIP

Modules: :mod:`~interp_af.targets.config` (the ``[model]`` and ``[setting]`` tables),
:mod:`~interp_af.targets.target` (the :class:`Target` registry), :mod:`~interp_af.targets.resolve`
(:func:`resolve` -> :class:`ResolvedTarget`).
"""

from interp_af.targets.config import ModelConfig, SettingConfig
from interp_af.targets.resolve import ResolvedTarget, resolve
from interp_af.targets.target import (
    REAL_CONTRASTS, Target, default_queries, default_target, find_target, list_targets, register_target, target_for,
)

__all__ = ["ModelConfig", "SettingConfig", "ResolvedTarget", "resolve", "REAL_CONTRASTS", "Target",
           "default_queries", "default_target", "find_target", "list_targets", "register_target", "target_for"]
