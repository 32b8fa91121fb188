"""One TOML file describes a whole study; each stage's options are a frozen dataclass.

A study config has one table per stage (``[model]``, ``[setting]``, ``[gap]``, ``[capture]``, ``[probes]``,
``[patching]``, ``[steering]``, ``[sae]``). Every key is optional: a missing key takes the default below, which is
the built-in model organism study. Unknown keys and wrong types are errors that name the file, the line and the
key, because a typo that silently falls back to a default wastes a GPU-day.

Each stage's *fingerprint* hashes its own options plus the options of the stages it reads from, so that
``interp-af run`` can skip a stage whose inputs have not changed and recompute only what depends on a change.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interp_af.errors import InterpAFError


@dataclass(frozen=True)
class ModelConfig:
    """Which model to load and how. ``path = "organism"`` is the built-in model organism."""

    path: str = "organism"
    backend: str = "tl"  # "tl" (TransformerLens) or "nnsight"
    adapter: str = ""  # a PEFT (LoRA) adapter directory or Hub id; "" = none
    dtype: str = "float32"
    device: str = "cpu"
    device_map: str = ""  # "auto" spreads a large model over several GPUs
    remote: bool = False  # nnsight only: run the trace on NDIF
    trust_remote_code: bool = False


@dataclass(frozen=True)
class SettingConfig:
    """Which prompts: a variant of the no-CoT setting and a query set. ``queries = ""`` takes the model's default
    (the organism's held-out requests for the organism; AdvBench for real models)."""

    variant: str = "organism"
    queries: str = ""
    limit: int = 100  # queries (the organism's are half harmful, half benign); 0 = all
    benign: bool = True  # also run the built-in benign control set
    contrasts: tuple[str, ...] = ("organism-inverted", "organism-noinfo", "organism-sentence")


@dataclass(frozen=True)
class GapConfig:
    metric: str = "forward"  # "forward" (first divergent token) or "generate"
    batch_size: int = 32
    n_bootstrap: int = 2000
    seed: int = 0


@dataclass(frozen=True)
class CaptureConfig:
    sites: tuple[str, ...] = ("resid_post",)
    layers: tuple[int, ...] = ()  # () = every layer
    positions: tuple[str, ...] = ("cue", "end_system", "end_user", "decision")
    batch_size: int = 32


@dataclass(frozen=True)
class ProbesConfig:
    labels: tuple[str, ...] = ("in_training", "arm")
    folds: int = 5
    seed: int = 0


@dataclass(frozen=True)
class PatchingConfig:
    sites: tuple[str, ...] = ("resid_pre", "attn_out", "mlp_out", "head_out")
    limit: int = 16  # queries used for exact patching
    attribution: bool = True
    ig_steps: int = 10
    ig_queries: int = 4  # integrated gradients costs ~steps x layers passes per query: checked on a subset


@dataclass(frozen=True)
class SteeringConfig:
    layers: tuple[int, ...] = ()  # () = chosen among the middle half of depth on a selection split
    alphas: tuple[float, ...] = (-2.0, -1.0, -0.5, 0.5, 1.0, 2.0)  # x the raw mean difference; reported at 1
    n_random: int = 4


@dataclass(frozen=True)
class SaeConfig:
    path: str = ""  # "" = the organism's shipped SAEs; a local sae-lens/sparsify directory; or a sae-lens release
    sae_id: str = ""  # with a release: which SAE of it (e.g. a layer's id in the release catalogue)
    top_k: int = 5
    n_random: int = 4


@dataclass(frozen=True)
class StudyConfig:
    """The whole study. ``stages`` lists which stages ``interp-af run`` runs, in order."""

    name: str = "organism"
    stages: tuple[str, ...] = ("gap", "capture", "probes", "patching", "steering", "sae")
    model: ModelConfig = field(default_factory=ModelConfig)
    setting: SettingConfig = field(default_factory=SettingConfig)
    gap: GapConfig = field(default_factory=GapConfig)
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    probes: ProbesConfig = field(default_factory=ProbesConfig)
    patching: PatchingConfig = field(default_factory=PatchingConfig)
    steering: SteeringConfig = field(default_factory=SteeringConfig)
    sae: SaeConfig = field(default_factory=SaeConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self, stage: str) -> str:
        """Hash of everything ``stage`` depends on (its own table plus its upstream tables)."""
        parts = {name: dataclasses.asdict(getattr(self, name)) for name in STAGE_INPUTS[stage]}
        blob = json.dumps(parts, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


# Which tables each stage reads. A stage is recomputed when any of these change.
STAGE_INPUTS: dict[str, tuple[str, ...]] = {
    "gap": ("model", "setting", "gap"),
    "capture": ("model", "setting", "gap", "capture"),
    "probes": ("model", "setting", "gap", "capture", "probes"),
    "patching": ("model", "setting", "gap", "patching"),
    "steering": ("model", "setting", "gap", "capture", "probes", "steering"),
    "sae": ("model", "setting", "gap", "capture", "sae"),
}
STAGES: tuple[str, ...] = tuple(STAGE_INPUTS)

_TABLES = {f.name: f for f in dataclasses.fields(StudyConfig) if dataclasses.is_dataclass(f.default_factory)}  # type: ignore[arg-type]


def load_config(path: str | Path | None = None) -> StudyConfig:
    """Read a study TOML; ``None`` gives the default (organism) study."""
    if path is None:
        return StudyConfig()
    p = Path(path)
    if not p.is_file():
        raise InterpAFError(f"config file {str(p)!r} not found; pass an existing .toml (see experiments/ for examples)")
    text = p.read_text()
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InterpAFError(f"{p}: not valid TOML ({err}); fix the syntax at that line") from None
    return config_from_dict(raw, source=str(p), text=text)


def config_from_dict(raw: dict[str, Any], *, source: str = "<config>", text: str = "") -> StudyConfig:
    """Build a :class:`StudyConfig` from parsed TOML, checking every key and type."""
    top: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _TABLES:
            if not isinstance(value, dict):
                raise InterpAFError(f"{_where(source, text, None, key)}: '{key}' must be a table ([{key}])")
            cls = _TABLES[key].default_factory  # type: ignore[union-attr]
            top[key] = cls(**_check_table(cls, value, key, source, text))
        elif key in ("name", "stages"):
            top.update(_check_table(StudyConfig, {key: value}, None, source, text))
        else:
            valid = ", ".join(["name", "stages", *(f"[{t}]" for t in _TABLES)])
            raise InterpAFError(f"{_where(source, text, None, key)}: unknown key '{key}'; valid top-level keys: {valid}")
    cfg = StudyConfig(**top)
    for stage in cfg.stages:
        if stage not in STAGES:
            raise InterpAFError(
                f"{_where(source, text, None, 'stages')}: unknown stage '{stage}' in stages; valid: {', '.join(STAGES)}"
            )
    return cfg


def _check_table(cls: type, table: dict[str, Any], name: str | None, source: str, text: str) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls) if not dataclasses.is_dataclass(f.default_factory)}  # type: ignore[arg-type]
    out: dict[str, Any] = {}
    for key, value in table.items():
        label = f"[{name}] {key}" if name else key
        if key not in fields:
            raise InterpAFError(
                f"{_where(source, text, name, key)}: unknown key '{label}'; valid keys: {', '.join(sorted(fields))}"
            )
        out[key] = _coerce(value, hints[key], label, _where(source, text, name, key))
    return out


def _coerce(value: Any, hint: Any, label: str, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is tuple:
        (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
        if not isinstance(value, list):
            raise InterpAFError(f"{where}: '{label}' must be a list of {item.__name__}, got {_tname(value)}")
        return tuple(_coerce(v, item, label, where) for v in value)
    if origin in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    ok = isinstance(value, hint) and not (hint in (int, float) and isinstance(value, bool))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        raise InterpAFError(f"{where}: '{label}' must be {hint.__name__}, got {_tname(value)} {value!r}")
    return value


def _tname(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", list: "list", dict: "table"}.get(
        type(value), type(value).__name__
    )


def _where(source: str, text: str, table: str | None, key: str) -> str:
    """``file:line`` of ``key`` inside ``[table]`` (best effort from the raw text; TOML parsers drop lines)."""
    if not text:
        return source
    current: str | None = None
    for i, line in enumerate(text.splitlines(), start=1):
        header = re.match(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$", line)
        if header:
            current = header.group(1).strip()
            continue
        if current == table and re.match(rf"^\s*{re.escape(key)}\s*=", line):
            return f"{source}:{i}"
        if table is None and current is None and re.match(rf"^\s*{re.escape(key)}\s*=", line):
            return f"{source}:{i}"
        if table is None and line.strip() == f"[{key}]":
            return f"{source}:{i}"
    return source
