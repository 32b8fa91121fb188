"""Checks of a target's inputs that need no weights, run before anything loads.

A ``--device cuda`` on a CPU machine, an adapter folder that is not there, ``--layers 9`` on a 2-layer model or
a direction file with a typo used to surface after the weights had been read and the twins rendered (minutes
on a real model, with progress bars on the terminal before the error). Everything here reads at most a
``config.json``: the model's depth and head count come from its config (or from the handle when one is already
loaded), so a layer that does not exist is one line at once.

Every check takes a ``label``: how the user wrote the input (``--layers`` on the command line,
``study.toml:7: [capture] layers`` in a study), so the error names it the way it was given.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from interp_af.errors import InterpAFError

__all__ = ["check_model_config", "check_setting_files", "model_shape", "check_layers", "check_heads", "check_file",
           "check_query_lengths"]


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name or Path(name).exists()


def check_model_config(m: Any, label: Any = lambda k: f"--{k.replace('_', '-')}") -> None:
    """``[model]``: the device exists on this machine; a local adapter path exists."""
    from interp_af.models.devices import check_device

    if not m.remote:
        try:
            check_device(m.device)
        except InterpAFError as err:
            raise InterpAFError(f"{label('device')}: {err}") from None
    if m.adapter and _looks_like_path(m.adapter) and not Path(m.adapter).expanduser().is_dir():
        raise InterpAFError(f"{label('adapter')}: adapter path {m.adapter} does not exist or is not a folder; pass "
                            f"an existing PEFT adapter folder or a Hub id")


def check_file(value: str, label: str, what: str, expect: str) -> None:
    """A file input (``direction_file``, ``queries``): exists and is a file."""
    p = Path(value).expanduser()
    if not p.exists():
        raise InterpAFError(f"{label}: {what} {value} does not exist; pass the path of {expect}")
    if not p.is_file():
        raise InterpAFError(f"{label}: {what} {value} is a folder, not a file; pass the path of {expect}")


def check_setting_files(s: Any, label: Any = lambda k: f"--{k.replace('_', '-')}") -> None:
    """``[setting]``: a query file that is named exists (its content is checked when it is read)."""
    if s.queries:
        check_file(s.queries, label("queries"), "query file", "a CSV, JSONL or text file of requests")


def _first(cfg: dict, *keys: str) -> int | None:
    for k in keys:
        v = cfg.get(k)
        if isinstance(v, int) and not isinstance(v, bool):
            return v
    return None


def _model_config(t: Any) -> dict:
    from interp_af.models.hub import resolve_model

    folder = resolve_model(t.target.model())
    try:
        cfg = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if isinstance(cfg.get("text_config"), dict):  # multimodal configs (Gemma 3) nest the language model's
        cfg = {**cfg, **cfg["text_config"]}
    return cfg


def check_query_lengths(t: Any) -> None:
    """No request is by itself longer than the model's context (a 100k-character query): one line naming it
    before the weights load. The full prompts (system prompt included) are checked again before the first pass
    (:func:`interp_af.models.context.check_context`); this is the cheap lower bound."""
    from types import SimpleNamespace

    from interp_af.models.context import config_context

    limit = int(t.handle.n_ctx) if t.loaded and getattr(t.handle, "n_ctx", None) else \
        config_context(SimpleNamespace(**_model_config(t)))
    if not limit:
        return
    tok = t.tokenizer
    for q in t.queries:
        if len(q.text) < limit:  # a token holds at least one character: shorter texts cannot exceed the limit
            continue
        n = len(tok(q.text, add_special_tokens=False)["input_ids"])
        if n >= limit:
            raise InterpAFError(f"request {q.id} ({q.source or 'the request set'}) is {n} tokens long, more than "
                                f"the model's context of {limit} tokens before the prompt around it is added; "
                                f"shorten or drop that request, or use a model with a longer context")


def model_shape(t: Any) -> tuple[int | None, int | None]:
    """``(n_layers, n_heads)`` of resolved target ``t`` without loading its weights (from the loaded handle when
    there is one, else from the model folder's ``config.json``); ``None`` where it cannot be told cheaply."""
    if t.loaded:
        h = t.handle
        return int(h.n_layers), int(getattr(h, "n_heads", 0) or 0) or None
    cfg = _model_config(t)
    return (_first(cfg, "num_hidden_layers", "n_layer", "num_layers", "n_layers"),
            _first(cfg, "num_attention_heads", "n_head", "num_heads", "n_heads"))


def _check_range(values: Iterable[int], n: int | None, label: str, what: str) -> None:
    vals = [int(v) for v in values]
    if n is None or not vals:
        return
    bad = [v for v in vals if not 0 <= v < n]
    if bad:
        raise InterpAFError(f"{label} = {','.join(map(str, vals))}: {what}(s) {','.join(map(str, bad))} do not exist; "
                            f"this model has {what}s 0..{n - 1}")


def check_layers(t: Any, layers: Iterable[int], label: str) -> None:
    """Every layer index exists in ``t``'s model."""
    _check_range(layers, model_shape(t)[0], label, "layer")


def check_heads(t: Any, heads: Iterable[int], label: str) -> None:
    """Every head index exists in ``t``'s model."""
    _check_range(heads, model_shape(t)[1], label, "head")
