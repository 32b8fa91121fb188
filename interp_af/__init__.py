"""interp_af: mechanistic interpretability of alignment faking in the no-chain-of-thought setting.

The flow is one way: setting (prompts, twins) -> target / model handle -> activations on disk -> analyses
(probes, patching, SAE features, steering) -> result objects -> figures and report. The root API is one
function per step, each taking a target (a name from ``interp-af targets``, a folder, a Hub id, or a model
object you already hold) and the same config the TOML table and the CLI command use::

    import interp_af as af

    t = af.resolve(limit=40)                       # the default target: handle + requests + twins + decision tokens
    g = af.gap(t)                                  # GapStudy: compliance per arm, gap, intervals, per variant
    cap = af.capture(t, "acts/")                   # activations on disk (resumable)
    pr = af.probe(cap)                             # probes with controls, cue geometry, policy transfer
    pa = af.patch(t, af.PatchingConfig(sites=("resid_pre",)))
    st = af.steer(t)                               # layer chosen on held-apart twins, random/flipped controls
    sa = af.sae(t)                                 # SAE quality, attribution, ablation vs random features
    res = af.run(out="runs/default")               # the whole study: summary.json + report.html

Heavy libraries (torch, transformer-lens, nnsight, sae-lens) are imported lazily, so ``import interp_af`` and
the command line answer at once.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# name -> (module, attribute): resolved on first use
_API = {
    "load": ("interp_af.models.wrap", "as_handle"),
    "resolve": ("interp_af.targets", "resolve"),
    "Target": ("interp_af.targets", "Target"),
    "register_target": ("interp_af.targets", "register_target"),
    "ModelConfig": ("interp_af.targets", "ModelConfig"),
    "SettingConfig": ("interp_af.targets", "SettingConfig"),
    "gap": ("interp_af.stages.gap", "gap"),
    "GapConfig": ("interp_af.stages.gap", "GapConfig"),
    "capture": ("interp_af.stages.capture", "capture"),
    "CaptureConfig": ("interp_af.stages.capture", "CaptureConfig"),
    "open_capture": ("interp_af.acts.store", "open_capture"),
    "probe": ("interp_af.stages.probes", "probe"),
    "ProbesConfig": ("interp_af.stages.probes", "ProbesConfig"),
    "patch": ("interp_af.stages.patching", "patch"),
    "PatchingConfig": ("interp_af.stages.patching", "PatchingConfig"),
    "steer": ("interp_af.stages.steering", "steer"),
    "SteeringConfig": ("interp_af.stages.steering", "SteeringConfig"),
    "sae": ("interp_af.stages.sae", "sae"),
    "SaeConfig": ("interp_af.stages.sae", "SaeConfig"),
    "load_config": ("interp_af.pipeline.config", "load_config"),
    "StudyConfig": ("interp_af.pipeline.config", "StudyConfig"),
    "InterpAFError": ("interp_af.errors", "InterpAFError"),
}

__all__ = ["__version__", "twins", "run", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        module, attr = _API[name]
        value = getattr(import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'interp_af' has no attribute {name!r}")


def twins(target: Any = None, variant: str | None = None, **setting: Any) -> list:
    """The free/paid twins of ``variant`` (default: the target's main variant) for ``target``; ``setting``:
    fields of :class:`~interp_af.targets.SettingConfig` (``queries=``, ``limit=``, ``casing=``, ...)."""
    from interp_af.targets import resolve

    t = resolve(target, **setting)
    return t.twins(variant)


def run(config: Any = None, out: Any = None, *, progress: bool = True) -> Any:
    """The whole study: ``config`` is a TOML path, a :class:`StudyConfig`, or None (the default study); ``out``
    the run folder (default ``runs/<name>``). Returns a :class:`~interp_af.pipeline.study.StudyResult`."""
    from pathlib import Path

    from interp_af.pipeline.config import load_config, resolve_defaults
    from interp_af.pipeline.study import run_study

    cfg = resolve_defaults(config) if hasattr(config, "stages") else load_config(config)
    return run_study(cfg, Path(out) if out is not None else Path("runs") / cfg.name, progress=progress)
