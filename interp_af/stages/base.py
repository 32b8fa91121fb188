"""A stage: one registered, typed unit of a study, in one file.

A stage declares what it is handed and nothing else reaches it:

- ``config``: its own config dataclass (the TOML table named after the stage, the CLI command's options and
  the Python API's argument: one declaration, see :mod:`interp_af.options`);
- ``uses_target``: whether it runs on the study's model and prompts (the ``[model]`` and ``[setting]``
  tables, resolved once into a :class:`~interp_af.targets.ResolvedTarget`);
- ``needs``: the earlier stages whose *results* it reads (loaded from their folders).

The runner (:mod:`interp_af.pipeline.runner`) fingerprints exactly those inputs, and the
:class:`StageContext` a stage runs in only hands out those inputs (and records which it touched), so a stage
cannot read a table its fingerprint does not cover: the stale-reuse class of bug has nowhere to happen.

A stage returns a typed result (saved into its folder, loadable with ``load``), a small typed summary (what
``summary.json`` and the verdicts read) and its part of the report (a
:class:`~interp_af.report.page.Contribution`: sections of figures drawn from the result, and findings). Adding a stage is one file that ends with :func:`register_stage`, plus its import in
:mod:`interp_af.stages`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Generic, Mapping, TypeVar

from interp_af.errors import InterpAFError

R = TypeVar("R")

TARGET_TABLES: tuple[str, ...] = ("model", "setting")


@dataclass
class StageContext:
    """What a running stage may see: its config, the target (if declared), earlier results (if declared).

    ``reads`` records which of its declared inputs it actually used (the tests check every declared input is
    read, so a declaration cannot go stale in the other direction either)."""

    name: str
    out: Path
    progress: bool
    _config: Any
    _target: Callable[[], Any] | None = None      # returns the ResolvedTarget (built on first use, shared)
    _inputs: Mapping[str, Callable[[], Any]] = field(default_factory=dict)
    reads: set[str] = field(default_factory=set)

    @property
    def config(self) -> Any:
        self.reads.add(self.name)
        return self._config

    @property
    def target(self) -> Any:
        if self._target is None:
            raise InterpAFError(f"stage {self.name!r} did not declare uses_target; it cannot read [model]/[setting]")
        self.reads.update(TARGET_TABLES)
        return self._target()

    def input(self, stage: str) -> Any:
        """The result of an earlier stage this one declared in ``needs``."""
        if stage not in self._inputs:
            raise InterpAFError(f"stage {self.name!r} reads {stage!r} without declaring it in needs")
        self.reads.add(stage)
        return self._inputs[stage]()


@dataclass(frozen=True)
class StageSpec(Generic[R]):
    """A registered stage (see the module docstring)."""

    name: str
    config: type
    run: Callable[[StageContext], R]
    load: Callable[[Path], R]
    summarize: Callable[[R], Any]            # -> a frozen dataclass (its asdict goes to done.json)
    summary_type: type                       # the summary dataclass (to read done.json back)
    report: Callable[[R, Any], Any]          # (result, summary) -> interp_af.report.page.Contribution
    needs: tuple[str, ...] = ()
    uses_target: bool = True
    description: str = ""

    def tables(self) -> tuple[str, ...]:
        """The config tables this stage is handed directly (its own plus the target's)."""
        return (*(TARGET_TABLES if self.uses_target else ()), self.name)

    def read_summary(self, data: Mapping[str, Any]) -> Any:
        return from_dict(self.summary_type, data)


_STAGES: dict[str, StageSpec] = {}


def register_stage(spec: StageSpec) -> StageSpec:
    """Add a stage; stages run in registration order unless a study lists them otherwise."""
    for need in spec.needs:
        if need not in _STAGES:
            raise InterpAFError(f"stage {spec.name!r} needs {need!r}, which is not registered before it")
    _STAGES[spec.name] = spec
    return spec


def stages() -> dict[str, StageSpec]:
    """Every registered stage, in order (the built-ins register when :mod:`interp_af.stages` is imported)."""
    import interp_af.stages  # noqa: F401 - registers the built-in stages

    return dict(_STAGES)


def get_stage(name: str) -> StageSpec:
    found = stages()
    if name not in found:
        raise InterpAFError(f"unknown stage {name!r}; valid: {', '.join(found)}")
    return found[name]


def from_dict(cls: type, data: Any) -> Any:
    """Rebuild a (nested) frozen dataclass from its ``asdict`` form (lists back to tuples where typed so)."""
    import typing

    if not dataclasses.is_dataclass(cls) or not isinstance(data, Mapping):
        return data
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        kwargs[f.name] = _convert(hints[f.name], data[f.name])
    return cls(**kwargs)


def _convert(hint: Any, value: Any) -> Any:
    import collections.abc
    import types
    import typing

    origin = typing.get_origin(hint)
    if value is None:
        return None
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(args[0], value) if len(args) == 1 else value
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value)
    if origin is tuple and isinstance(value, list):
        args = typing.get_args(hint)
        item = args[0] if args else Any
        return tuple(_convert(item, v) for v in value) if (len(args) == 2 and args[1] is Ellipsis) else \
            tuple(_convert(a, v) for a, v in zip(args, value)) if args else tuple(value)
    if origin in (dict, collections.abc.Mapping):
        args = typing.get_args(hint)
        return {k: _convert(args[1], v) for k, v in value.items()} if args else dict(value)
    return value
