"""One TOML file describes a whole study: ``[model]``, ``[setting]``, one table per registered stage, and
``[verdicts]`` (the thresholds of the verdict table).

:class:`StudyConfig` is built from the stage registry (:mod:`interp_af.stages`): each stage's config dataclass
is a field named after the stage, so a new stage brings its table with it. Every key is optional; a missing
key takes the dataclass default, and an empty ``[model] path`` / ``[setting] variant`` / unset ``contrasts``
take the target's own (:func:`resolve_defaults` fills them in; a run folder records the filled-in config).

Everything is checked when the file is read, before any model loads: unknown keys, wrong types, and values
(``metric = "foo"``, ``folds = 1``, ``limit = -1``), each error one line naming the file, the line and the key,
because a typo that silently falls back to a default wastes a GPU-day; then the study as a whole: known
stages whose inputs are listed, prompt variants that exist and declare a role, a run name that is a name.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import field, make_dataclass
from pathlib import Path
from typing import Any

from interp_af.errors import InterpAFError
from interp_af.options import check_values
from interp_af.report.verdicts import VerdictConfig
from interp_af.stages import stages as registered_stages
from interp_af.targets.config import ModelConfig, SettingConfig

TARGET_TABLES: dict[str, type] = {"model": ModelConfig, "setting": SettingConfig}
# tables that no stage reads: the verdict thresholds (changing them rebuilds summary.json, reruns nothing)
STUDY_TABLES: dict[str, type] = {"verdicts": VerdictConfig}


def _study_config_class() -> type:
    specs = registered_stages()
    fields: list[tuple[str, Any, Any]] = [
        ("name", str, field(default="")),
        ("stages", tuple[str, ...], field(default=tuple(specs))),
        ("model", ModelConfig, field(default_factory=ModelConfig)),
        ("setting", SettingConfig, field(default_factory=SettingConfig)),
    ]
    fields += [(name, spec.config, field(default_factory=spec.config)) for name, spec in specs.items()]
    fields += [(name, cls, field(default_factory=cls)) for name, cls in STUDY_TABLES.items()]

    def to_dict(self: Any) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def table(self: Any, name: str) -> Any:
        """The config of table ``name`` (``model``, ``setting`` or a stage)."""
        return getattr(self, name)

    return make_dataclass("StudyConfig", fields, frozen=True, namespace={
        "__doc__": "The whole study: its name, the stages it runs (in order) and one config per table.",
        "__module__": __name__, "to_dict": to_dict, "table": table})


StudyConfig = _study_config_class()


def tables() -> dict[str, type]:
    """Every table a study config has, with its dataclass: the target's two, one per stage, then ``[verdicts]``."""
    return {**TARGET_TABLES, **{n: s.config for n, s in registered_stages().items()}, **STUDY_TABLES}


def check_name(name: str, where: str = "name") -> str:
    """A run name is a name (it becomes ``runs/<name>``), never a path (:func:`interp_af.owned.check_name`)."""
    from interp_af.owned import check_name as _check

    return _check(name, what=where)


def resolve_defaults(cfg: Any) -> Any:
    """``cfg`` with the target's defaults filled in (model path, main variant, contrasts, run name)."""
    from interp_af.targets import resolve

    t = resolve(cfg.model, cfg.setting)
    model, setting = t.configs()
    return dataclasses.replace(cfg, model=model, setting=setting, name=cfg.name or t.name)


def check_study(cfg: Any, *, source: str = "<config>", text: str = "") -> None:
    """Cross-table checks that need no model: stages exist and their inputs run before them; every variant
    exists and every contrast declares a role; the name is a name."""
    from interp_af.setting.prompts import get_variant, variant_role

    specs = registered_stages()
    where = _where(source, text, None, "stages")
    seen: list[str] = []
    for stage in cfg.stages:
        if stage not in specs:
            raise InterpAFError(f"{where}: unknown stage {stage!r} in stages; valid: {', '.join(specs)}")
        missing = [n for n in specs[stage].needs if n not in seen]
        if missing:
            raise InterpAFError(f"{where}: stage {stage!r} reads {', '.join(missing)}, which must come before it in "
                                "stages")
        seen.append(stage)
    if cfg.name:
        check_name(cfg.name, f"{_where(source, text, None, 'name')}: name")
    s = cfg.setting
    opts = {"casing": s.casing} if s.casing else {}
    for v in ([s.variant] if s.variant else []) + list(s.contrasts or ()):
        key = "variant" if v == s.variant else "contrasts"
        try:
            variant = get_variant(v, **opts)
        except InterpAFError as err:
            raise InterpAFError(f"{_where(source, text, 'setting', key)}: [setting] {key}: {err}") from None
        if key == "contrasts" and not variant_role(variant):
            raise InterpAFError(f"{_where(source, text, 'setting', 'contrasts')}: contrast variant {v!r} declares no "
                                "role; give it one (main, no_info, inverted, rated, second_cue, variation) or drop "
                                "it from contrasts")


def load_config(path: str | Path | None = None, *, resolve: bool = True) -> Any:
    """Read and check a study TOML (``None``: the default study); ``resolve`` fills in the target's defaults."""
    if path is None:
        cfg = StudyConfig()
        check_study(cfg)
        return resolve_defaults(cfg) if resolve else cfg
    p = Path(path)
    if not p.is_file():
        raise InterpAFError(f"config file {str(p)!r} not found; pass an existing .toml (see experiments/ for examples)")
    from interp_af.textio import read_text

    text = read_text(p, what="config file", expect="a .toml study config")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InterpAFError(f"{p}: not valid TOML ({err}); fix the syntax at that line") from None
    cfg = config_from_dict(raw, source=str(p), text=text)
    return resolve_defaults(cfg) if resolve else cfg


def config_from_dict(raw: dict[str, Any], *, source: str = "<config>", text: str = "") -> Any:
    """Build and check a :class:`StudyConfig` from parsed TOML (or a plain dict)."""
    known = tables()
    top: dict[str, Any] = {}
    for key, value in raw.items():
        if key in known:
            if not isinstance(value, dict):
                raise InterpAFError(f"{_where(source, text, None, key)}: '{key}' must be a table ([{key}])")
            cls = known[key]

            def label(k: str, key: str = key) -> str:
                return f"{_where(source, text, key, k)}: [{key}] {k}"

            def unknown(k: str, key: str = key) -> str:
                return f"{_where(source, text, key, k)}: unknown key '[{key}] {k}'"

            top[key] = cls(**check_values(cls, value, label, unknown))
        elif key == "name":
            if not isinstance(value, str):
                raise InterpAFError(f"{_where(source, text, None, key)}: name must be a string, got {value!r}")
            top[key] = value
        elif key == "stages":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InterpAFError(f"{_where(source, text, None, key)}: stages must be a list of stage names")
            top[key] = tuple(value)
        else:
            valid = ", ".join(["name", "stages", *(f"[{t}]" for t in known)])
            raise InterpAFError(f"{_where(source, text, None, key)}: unknown key '{key}'; valid top-level keys: {valid}")
    cfg = StudyConfig(**top)
    check_study(cfg, source=source, text=text)
    return cfg


def _where(source: str, text: str, table: str | None, key: str) -> str:
    """``file:line`` of ``key`` inside ``[table]`` (best effort from the raw text; TOML parsers drop lines)."""
    if not text:
        return source
    current: str | None = None
    for i, line in enumerate(text.splitlines(), start=1):
        header = re.match(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$", line)
        if header:
            current = header.group(1).strip()
            if table is None and current == key:
                return f"{source}:{i}"
            continue
        if current == table and re.match(rf"^\s*{re.escape(key)}\s*=", line):
            return f"{source}:{i}"
    return source
