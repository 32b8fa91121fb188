"""nnsight backend: one trace function, run locally or sent to NDIF.

The model is a plain ``transformers`` model wrapped in nnsight's ``TransformersModel`` (``LanguageModel``
is its deprecated alias in nnsight 0.8). A forward pass is one
``model.trace(...)`` whose body (:func:`trace_body`) walks the blocks in execution order, and at each
canonical site reads the module's input or output (table in :mod:`interp_af.models.sites_nn`), applies the
interventions, saves the capture and writes the edited tensor back. :func:`run_trace` opens the trace with
``remote=False`` (local) or ``remote=True`` (NDIF, for models too large for local GPUs such as
Llama-3.1-405B): the body is the same function in both cases.

nnsight requires modules to be visited in the order the model runs them (an ``OutOfOrderError``
otherwise), hence the loops over layers and over ``SITE_ORDER``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor

from interp_af.errors import InterpAFError
from interp_af.models.batch import Batch
from interp_af.models.edits import apply_interventions, capture_and_route, logit_columns
from interp_af.models.handle import BaseHandle, ForwardOut, Prefix, position_ids
from interp_af.models.interventions import Intervention
from interp_af.models.sites import SiteKey
from interp_af.models.sites_nn import SITE_ORDER, FamilyTable, family_table


@dataclass(frozen=True)
class TracePlan:
    """Everything the trace body needs, as plain data (what NDIF receives along with the code)."""

    table: FamilyTable
    n_heads: int
    n_layers_run: int
    capture: tuple[SiteKey, ...]
    capture_positions: Tensor | None
    interventions: tuple[Intervention, ...]
    logit_positions: Tensor | None
    stop_early: bool
    grad: bool


def _get(root: Any, path: str) -> Any:
    for part in filter(None, path.split(".")):
        root = root[int(part)] if part.isdigit() else getattr(root, part)
    return root


def trace_body(lm: Any, tracer: Any, batch: Batch, plan: TracePlan, saved: dict) -> None:
    """The body of every trace (local and remote): edit and save sites in execution order, then logits."""
    layers = _get(lm, plan.table.layers)
    wanted = set(plan.capture)
    for layer in range(plan.n_layers_run):
        for site in SITE_ORDER:
            key = SiteKey(site, layer)
            ivs = [iv for iv in plan.interventions if iv.site == site and iv.layer == layer]
            if key not in wanted and not ivs:
                continue
            spec = plan.table.sites[site]
            module = _get(layers[layer], spec.path)
            raw = module.input if spec.kind == "input" else module.output
            act = raw[spec.tuple_index] if spec.tuple_index is not None else raw
            if site == "head_out":
                act = act.reshape(*act.shape[:-1], plan.n_heads, -1)
            new = apply_interventions(act, ivs, batch)
            if key in wanted:
                kept, new = capture_and_route(new, batch, plan.capture_positions, plan.grad)
                saved[key] = kept.save()
            # head_out's reshape is a new tensor, off the model's path: with grad it must be written back so
            # that downstream depends on the captured tensor (else its .grad stays None)
            if new is act and not (plan.grad and site == "head_out" and key in wanted):
                continue
            if site == "head_out":
                new = new.reshape(*new.shape[:-2], -1)
            if spec.tuple_index is not None:
                items = list(raw)
                items[spec.tuple_index] = new
                new = tuple(items)
            if spec.kind == "input":
                module.input = new
            else:
                module.output = new
    if plan.stop_early:
        tracer.stop()  # skip the remaining blocks and the unembedding
    else:
        saved["logits"] = lm.output.logits.save()   # already only at the wanted positions (logits_to_keep)


# the modules the trace body touches; NDIF does not have interp_af installed, so they travel by value
REMOTE_MODULES: tuple[str, ...] = ("interp_af.errors", "interp_af.models.batch", "interp_af.models.interventions",
                                   "interp_af.models.sites", "interp_af.models.sites_nn", "interp_af.models.edits",
                                   "interp_af.models.nn")


def register_for_ndif() -> None:
    """Ship :data:`REMOTE_MODULES` by source with remote requests (``nnsight.register``)."""
    import importlib

    import nnsight

    for name in REMOTE_MODULES:
        nnsight.register(importlib.import_module(name))


def hf_inputs(batch: Batch, logit_positions: Tensor | None, after: Any = None) -> dict:
    """The ``transformers`` forward's keyword arguments for ``batch``; with ``after`` (a
    :class:`~interp_af.models.handle.Prefix`), the row continues the cached prefix: positions start at its
    length, the mask covers it, and the model gets a copy of its cache (HF appends to a cache in place)."""
    import copy

    # logits_to_keep: the unembedding runs only at the wanted positions ([B, T, vocab] would not fit for a
    # 128k vocabulary and a few thousand tokens)
    inputs = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask,
              "position_ids": position_ids(batch), "logits_to_keep": logit_columns(batch, logit_positions)}
    if after is not None:
        ones = torch.ones(batch.input_ids.shape[0], after.length, dtype=batch.attention_mask.dtype,
                          device=batch.attention_mask.device)
        inputs.update(attention_mask=torch.cat([ones, batch.attention_mask], dim=1),
                      position_ids=inputs["position_ids"] + after.length, past_key_values=copy.deepcopy(after.cache))
    return inputs


def run_trace(lm: Any, batch: Batch, plan: TracePlan, *, remote: bool = False, after: Any = None) -> dict:
    """Open one trace (``remote`` selects NDIF) and run :func:`trace_body` in it; returns the saved values."""
    import nnsight

    if remote:
        register_for_ndif()
    inputs = hf_inputs(batch, plan.logit_positions, after)
    with lm.trace(**inputs, remote=remote) as tracer:
        # the dict itself is saved (marked before the body runs, which may stop early): NDIF sends saved
        # variables of this frame back by name, so its contents return with it
        saved = nnsight.save({})
        trace_body(lm, tracer, batch, plan, saved)
    return saved


def load_nnsight(model: str | Path, *, adapter=None, dtype: torch.dtype = torch.float32, device: str = "cpu",
                 device_map: str | None = None, remote: bool = False,
                 trust_remote_code: bool = False) -> "NNHandle":
    # LanguageModel is a deprecated alias of this in nnsight 0.8
    from nnsight.modeling.transformers import TransformersModel

    from interp_af.models.hub import load_hf_model, load_tokenizer, resolve_model

    if remote:
        # NDIF serves the model: locally only the config and tokenizer are needed (weights stay on "meta")
        if adapter is not None:
            raise InterpAFError("adapters cannot be sent to NDIF (remote=True); run locally with --backend nnsight "
                                "or merge the adapter into a model NDIF serves")
        try:
            lm = TransformersModel(str(model), task="text-generation", dtype=dtype,
                                   trust_remote_code=trust_remote_code)
        except Exception as err:  # noqa: BLE001 - config/tokenizer fetch without network, unknown id
            raise InterpAFError(f"could not prepare {model!r} for NDIF ({type(err).__name__}); remote=True needs the "
                                "Hub id of a model NDIF serves, network access and an NDIF API key") from None
        return NNHandle(lm, lm.tokenizer, name=str(model), remote=True)
    path = resolve_model(model)
    tok = load_tokenizer(path, trust_remote_code)
    hf = load_hf_model(path, dtype=dtype, device=device, device_map=device_map,
                       trust_remote_code=trust_remote_code, adapter=adapter)
    hf.requires_grad_(False)
    lm = TransformersModel(hf, tokenizer=tok, task="text-generation")
    handle = NNHandle(lm, tok, name=str(model), path=path)
    from interp_af.models.convert import read_source  # local only: NDIF receives REMOTE_MODULES, not this

    handle.source = read_source(path)
    return handle


class NNHandle(BaseHandle):
    """An nnsight ``LanguageModel`` behind the handle API."""

    backend = "nnsight"

    def __init__(self, lm: Any, tokenizer: Any, *, name: str, path: Path | None = None, remote: bool = False) -> None:
        self.lm = lm
        self.tokenizer = tokenizer
        self.name = name
        self.path = path
        self.remote = remote
        cfg = lm.config
        text_cfg = getattr(cfg, "text_config", None) or cfg
        self.model_type = text_cfg.model_type
        self.table = family_table(self.model_type)
        self.n_layers = int(getattr(text_cfg, "num_hidden_layers", None) or text_cfg.n_layer)
        self.d_model = int(getattr(text_cfg, "hidden_size", None) or text_cfg.n_embd)
        self.n_heads = int(getattr(text_cfg, "num_attention_heads", None) or text_cfg.n_head)
        self.d_head = int(getattr(text_cfg, "head_dim", None) or self.d_model // self.n_heads)
        from interp_af.models.context import config_context

        self.n_ctx = config_context(cfg)   # HF runs RoPE models past it silently, GPT-2 crashes: refuse both
        param = next(lm._module.parameters())
        self.device = param.device if not remote else torch.device("cpu")
        self.dtype = param.dtype

    def embedding_matrix(self) -> Tensor:
        return self.lm._module.get_input_embeddings().weight.detach()

    @property
    def hf_model(self) -> Any:
        """The plain ``transformers`` model (for KV-cached generation); None when it runs on NDIF."""
        return None if self.remote else self.lm._module

    def _forward(self, batch: Batch, capture: tuple[SiteKey, ...], capture_positions: Tensor | None,
                 interventions: tuple[Intervention, ...], logit_positions: Tensor | None,
                 stop_at_layer: int | None, grad: bool) -> ForwardOut:
        return self._run(batch, capture, capture_positions, interventions, logit_positions, stop_at_layer, grad)

    def _run(self, batch: Batch, capture: tuple[SiteKey, ...], capture_positions: Tensor | None,
             interventions: tuple[Intervention, ...], logit_positions: Tensor | None, stop_at_layer: int | None,
             grad: bool, after: Any = None) -> ForwardOut:
        if not capture and not interventions and stop_at_layer is None and not self.remote:
            # nothing to read or edit inside the model: the plain transformers forward, without a trace (the
            # same call the trace would make; a trace costs ~3% more on a 135M model on CPU)
            return ForwardOut(logits=self.lm._module(**hf_inputs(batch, logit_positions, after)).logits, acts={})
        needed = [k.layer + 1 for k in capture] + [iv.layer + 1 for iv in interventions]
        n_run = stop_at_layer if stop_at_layer is not None else max(needed, default=0)
        plan = TracePlan(self.table, self.n_heads, n_run, capture, capture_positions, interventions,
                         logit_positions, stop_at_layer is not None, grad)
        saved = run_trace(self.lm, batch, plan, remote=self.remote, after=after)
        return ForwardOut(logits=saved.get("logits"), acts={k: saved[k] for k in capture})

    # -- a cached prefix (both arms of a twin share everything before the cue) --------------------------------
    @torch.no_grad()
    def prefix(self, ids: Sequence[int]) -> Prefix | None:
        if self.remote or not ids:
            return None
        out = self.lm._module(input_ids=torch.tensor([list(ids)], device=self.device), use_cache=True,
                              logits_to_keep=1)
        return Prefix(cache=out.past_key_values, length=len(ids), tokens=tuple(int(i) for i in ids))

    def _forward_after(self, after: Prefix, batch: Batch, capture: tuple[SiteKey, ...],
                       capture_positions: Tensor | None, interventions: tuple[Intervention, ...],
                       logit_positions: Tensor | None, stop_at_layer: int | None, grad: bool) -> ForwardOut:
        return self._run(batch, capture, capture_positions, interventions, logit_positions, stop_at_layer, grad,
                         after=after)
