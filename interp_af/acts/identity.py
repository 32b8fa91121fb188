"""What a capture was built from: the model, the prompt set and the capture config, each as a stable hash.

A cache is only reusable (resumed, or returned as-is) when all three match; otherwise it would mix activations
of two models or two prompt sets in one array. The pieces:

- **model**: the handle's name, backend, dtype, adapter, shape, a revision when the name is a Hub snapshot, and
  a *weights fingerprint*: sha256 over every parameter's name, shape, dtype and an evenly strided sample of
  4,096 of its values. Cheap (milliseconds even at 70B, no full read) yet any fine-tune, LoRA adapter or
  re-initialisation changes it. Parameters on the ``meta`` device (an nnsight remote model) contribute their
  names and shapes only. Weights converted from a GGUF file add ``gguf_sha256`` (the file they came from) and
  ``weights_note`` ("dequantised Q4_1 weights, not the original checkpoint").
- **prompts**: sha256 over the canonical JSON of every prompt (token ids, named positions, ids, metadata), in
  order.
- **config**: sites, layers, position specs, storage dtype, shard size, whether the metric was read and with
  which decision tokens.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Iterable, Mapping

import torch

_SAMPLE = 4096
# what must match for two captures to hold the same numbers (the name or path of the weights need not)
MODEL_KEYS: tuple[str, ...] = ("fingerprint", "backend", "dtype", "n_layers", "d_model", "n_heads", "d_head")


def _canon(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()


def digest(obj: Any) -> str:
    return hashlib.sha256(_canon(obj)).hexdigest()


def prompt_record(p: Any) -> dict:
    """The part of a RenderedPrompt that defines its activations and labels."""
    return {
        "input_ids": list(p.input_ids), "positions": dict(p.positions), "query_id": p.query_id, "arm": p.arm,
        "variant": p.variant, "meta": dict(p.meta),
    }


def prompts_hash(prompts: Iterable[Any]) -> str:
    h = hashlib.sha256()
    for p in prompts:
        h.update(_canon(prompt_record(p)))
        h.update(b"\n")
    return h.hexdigest()


def find_module(handle: Any) -> torch.nn.Module | None:
    """The torch module behind a handle (TL HookedTransformer, HF model, or nnsight's wrapped model)."""
    for attr in ("model", "hf_model", "_model", "module", "_module", "tl_model", "nn_model"):
        m = getattr(handle, attr, None)
        if isinstance(m, torch.nn.Module):
            return m
        inner = getattr(m, "_model", None)  # nnsight LanguageModel keeps the HF model here
        if isinstance(inner, torch.nn.Module):
            return inner
    for v in vars(handle).values() if hasattr(handle, "__dict__") else ():
        if isinstance(v, torch.nn.Module):
            return v
    return None


@torch.no_grad()
def weights_fingerprint(module: torch.nn.Module | None) -> str:
    """sha256 over names, shapes, dtypes and a strided value sample of every parameter ("" if no module)."""
    if module is None:
        return ""
    h = hashlib.sha256()
    for name, p in sorted(module.named_parameters(), key=lambda kv: kv[0]):
        h.update(f"{name}|{tuple(p.shape)}|{p.dtype}".encode())
        if p.device.type == "meta" or p.numel() == 0:
            continue
        flat = p.detach().reshape(-1)
        step = max(1, flat.numel() // _SAMPLE)
        h.update(flat[::step][:_SAMPLE].to("cpu", torch.float32).numpy().tobytes())
    return h.hexdigest()


def model_identity(handle: Any, *, adapter: str | None = None, revision: str | None = None) -> dict:
    """A JSON-able description of the model a capture reads; ``fingerprint`` ties it to the actual weights."""
    name = str(getattr(handle, "name", ""))
    if revision is None:
        m = re.search(r"snapshots/([0-9a-f]{40})", name)
        revision = getattr(handle, "revision", None) or (m.group(1) if m else "")
    ident = {
        "name": name,
        "revision": revision or "",
        "adapter": str(adapter if adapter is not None else getattr(handle, "adapter", "") or ""),
        "backend": str(getattr(handle, "backend", "")),
        "dtype": str(getattr(handle, "dtype", "")).replace("torch.", ""),
        "n_layers": int(handle.n_layers), "d_model": int(handle.d_model),
        "n_heads": int(getattr(handle, "n_heads", 0)), "d_head": int(getattr(handle, "d_head", 0)),
        "fingerprint": weights_fingerprint(find_module(handle)),
    }
    source = dict(getattr(handle, "source", None) or {})
    if source.get("gguf_sha256"):   # converted GGUF weights: which file, and that they are not the original
        ident["gguf_sha256"] = str(source["gguf_sha256"])
        ident["weights_note"] = str(source.get("weights_note", ""))
    return ident


def diff_keys(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """Keys whose values differ between two identity dicts (for a one-line refusal)."""
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
