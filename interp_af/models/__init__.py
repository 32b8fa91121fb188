"""Model handles: one interface over TransformerLens and nnsight, canonical sites, interventions, the metric.

``load_model(path_or_id, backend="tl"|"nnsight", adapter=..., dtype=..., device=..., device_map=...)`` returns
a handle whose ``forward(batch, capture=..., interventions=..., logit_positions=..., stop_at_layer=...,
grad=...)`` runs one pass. Heavy libraries (TransformerLens, nnsight, peft) load only when a backend does.
``path_or_id`` may also be a ``.gguf`` file or a packaged model (``smollm2-135m-instruct``, ``gemma-3-270m``:
:mod:`interp_af.models.packaged`), converted once into a cached folder. :func:`check_context` refuses prompts
longer than the model's context before anything runs.
"""

from interp_af.models.batch import Batch, collate
from interp_af.models.context import check_context, context_limit
from interp_af.models.handle import BACKENDS, ForwardOut, ModelHandle, load_model
from interp_af.models.interventions import OPS, Intervention
from interp_af.models.metric import DecisionTokens, decision_tokens, logit_diff, metric_inputs
from interp_af.models.sites import SITES, SiteKey

__all__ = ["BACKENDS", "Batch", "DecisionTokens", "ForwardOut", "Intervention", "ModelHandle", "OPS", "SITES",
           "SiteKey", "check_context", "collate", "context_limit", "decision_tokens", "load_model", "logit_diff",
           "metric_inputs"]
