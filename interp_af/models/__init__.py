"""Model handles: one interface over TransformerLens and nnsight, canonical sites, interventions, the metric.

``load_model(path_or_id, backend="auto"|"tl"|"nnsight", adapter=..., dtype=..., device=..., device_map=...)`` returns
a handle whose ``forward(batch, capture=..., interventions=..., logit_positions=..., stop_at_layer=...,
grad=...)`` runs one pass; ``as_handle(obj)`` wraps a model object you already hold. ``path_or_id`` may also be
a ``.gguf`` file or a packaged model (``smollm2-135m-instruct``, ``gemma-3-270m``: :mod:`interp_af.models.packaged`),
converted once into a cached folder; :func:`check_context` refuses prompts longer than the model's context before
anything runs. Names are resolved on first use, so importing the package (or a light submodule such as
:mod:`.sites`) does not import torch.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Batch": "batch", "collate": "batch", "BACKENDS": "handle", "ForwardOut": "handle", "ModelHandle": "handle",
    "load_model": "handle", "OPS": "interventions", "Intervention": "interventions", "DecisionTokens": "metric",
    "decision_tokens": "metric", "logit_diff": "metric", "metric_inputs": "metric", "SITES": "sites",
    "SiteKey": "sites", "as_handle": "wrap", "Cell": "patching", "PatchRun": "patching",
    "check_context": "context", "context_limit": "context",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(f"interp_af.models.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'interp_af.models' has no attribute {name!r}")
