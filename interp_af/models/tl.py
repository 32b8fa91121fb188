"""TransformerLens backend.

Two routes, both with raw Hugging Face numerics (no weight folding, no centering, so residuals equal the HF
hidden states and SAEs trained on HF activations apply):

- ``hooked``: a ``HookedTransformer`` built from the HF weights (what sae-lens's ``HookedSAETransformer``
  needs). TL 3.9 refuses local folders in ``from_pretrained``, so we use its lower-level loaders. Two traps
  are worked around here: TL picks an architecture branch by *substring of the path* (a folder whose path
  contains "llama" or "gemma" crashes), so the loaders are pointed at a neutral symlink; and its GPT-2 branch
  hard-codes ``d_mlp = 4 * d_model``, ignoring ``n_inner``.
- ``bridge``: ``TransformerBridge`` wrapping the HF model itself, for architectures the hooked route does
  not cover (Gemma 2) and for ``device_map`` sharding across GPUs.

Interventions and captures become TL forward hooks (``run_with_hooks``), one hook per (site, layer).

Activation patching on the hooked route has a fast path (:meth:`TLHandle._patch_fast`, the same contract as
:func:`interp_af.models.patching.patch_generic`): positions before the first differing token are identical in
both runs and causally untouched by any patch at or after it, so their keys/values are computed once (a
frozen prefix KV cache) and every patched row runs only the suffix; a patch at layer ``L`` starts the pass
at ``L`` from the cached residual stream (``start_at_layer``), so nothing below ``L`` is recomputed; and a row
whose earliest patched position is ``s`` runs positions ``s..`` only, over the target run's keys/values up to
``s`` (causal attention: nothing before ``s`` can change), so a cell near the decision costs a few positions.
"""

from __future__ import annotations

import copy
import os
from collections import defaultdict
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from interp_af.errors import InterpAFError
from interp_af.models.batch import Batch
from interp_af.models.context import config_context, min_limit
from interp_af.models.convert import read_source
from interp_af.models.edits import apply_interventions, capture_and_route, gather_columns, logit_columns
from interp_af.models.handle import BaseHandle, ForwardOut, position_ids
from interp_af.models.interventions import Intervention
from interp_af.models.sites import SiteKey
from interp_af.models.sites_tl import tl_hook_name

ROUTES = ("auto", "hooked", "bridge")
_BRIDGE_ONLY = ("gemma2", "gemma3", "gemma3_text")
_PATH_TRAPS = ("llama", "gemma")


def _neutral_dir() -> str:
    """A temporary folder whose path contains none of the substrings TL keys architectures on."""
    for base in (None, "/tmp", os.getcwd()):
        d = tempfile.mkdtemp(prefix="iaf_tl_", dir=base)
        if not any(t in d.lower() for t in _PATH_TRAPS):
            return d
        shutil.rmtree(d, ignore_errors=True)
    raise InterpAFError("no temporary folder without 'llama'/'gemma' in its path; set TMPDIR to a neutral folder")


def _hooked_from_hf(path: Path, hf: Any, tokenizer: Any, dtype: torch.dtype, device: str) -> Any:
    from transformer_lens import HookedTransformer
    from transformer_lens import loading_from_pretrained as lp

    tmp = _neutral_dir()
    try:
        link = os.path.join(tmp, "model")
        os.symlink(path.resolve(), link)
        cfg = lp.get_pretrained_model_config(link, fold_ln=False, device=device, dtype=dtype)
        if hf.config.model_type == "gpt2":  # TL's GPT-2 branch ignores n_inner
            cfg.d_mlp = hf.config.n_inner or 4 * hf.config.n_embd
        head_dim = getattr(hf.config, "head_dim", None)
        if head_dim and head_dim != cfg.d_head:  # TL's Llama branch ignores a custom head_dim
            raise NotImplementedError("custom head_dim")
        cfg.model_name = path.name
        state = lp.get_pretrained_state_dict(link, cfg, hf_model=hf)
        with warnings.catch_warnings():  # TL 3.9 deprecates HookedTransformer, but sae-lens's SAE splicing needs it
            warnings.simplefilter("ignore", DeprecationWarning)
            # TL re-configures the tokenizer it is given (padding side): give it a copy, keep ours as loaded
            model = HookedTransformer(cfg, tokenizer=copy.deepcopy(tokenizer), move_to_device=False)
        model.load_and_process_state_dict(state, fold_ln=False, center_writing_weights=False, center_unembed=False,
                                          fold_value_biases=False, refactor_factored_attn_matrices=False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return model.to(device, print_details=False)


def load_tl(model: str | Path, *, adapter=None, dtype: torch.dtype = torch.float32, device: str = "cpu",
            device_map: str | None = None, trust_remote_code: bool = False, route: str = "auto") -> "TLHandle":
    from interp_af.models.hub import load_hf_model, load_tokenizer, resolve_model

    if route not in ROUTES:
        raise InterpAFError(f"tl_route {route!r} is unknown; use one of {', '.join(ROUTES)}")
    from transformers import AutoConfig

    path = resolve_model(model)
    tok = load_tokenizer(path, trust_remote_code)
    model_type = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code).model_type
    route = _pick_route(route, model_type, device_map)
    # the hooked route copies the weights into TL's layout: keep the HF copy on the CPU meanwhile
    hf = load_hf_model(path, dtype=dtype, device="cpu" if route == "hooked" else device,
                       device_map=device_map, trust_remote_code=trust_remote_code, adapter=adapter)
    handle = _build(path, hf, tok, name=str(model), model_type=model_type, route=route, dtype=dtype, device=device,
                    device_map=device_map, reload=None)
    handle.source = read_source(path)
    return handle


def tl_from_hf(path: Path | None, hf: Any, tokenizer: Any, *, name: str, model_type: str, adapter=None,
               dtype: torch.dtype = torch.float32, device: str = "cpu", device_map: str | None = None,
               trust_remote_code: bool = False) -> "TLHandle":
    """A TransformerLens handle over an HF model that stays in use elsewhere (the ``auto`` backend's nnsight side).

    The hooked route converts ``hf``'s weights (a copy in TL's layout; ``hf`` is left as it is). The Bridge wraps
    the module it is given and re-wires it, so it gets a second HF model loaded from ``path``.
    """
    from interp_af.models.hub import load_hf_model

    if path is None:
        raise InterpAFError(f"{name!r} has no local folder to build its TransformerLens model from; load it with "
                            "backend='tl' for TransformerLens's patching fast path")

    def reload() -> Any:
        return load_hf_model(path, dtype=dtype, device=device, device_map=device_map,
                             trust_remote_code=trust_remote_code, adapter=adapter)

    route = _pick_route("auto", model_type, device_map)
    return _build(path, hf if route == "hooked" else reload(), tokenizer, name=name, model_type=model_type,
                  route=route, dtype=dtype, device=device, device_map=device_map, reload=reload, keep_hf=True)


def needs_bridge(model_type: str, device_map: str | None) -> bool:
    """TL's hooked route does not cover this architecture, or cannot spread over several GPUs."""
    return model_type in _BRIDGE_ONLY or device_map is not None


def _pick_route(route: str, model_type: str, device_map: str | None) -> str:
    if route == "auto":
        return "bridge" if needs_bridge(model_type, device_map) else "hooked"
    return route


def _build(path: Path, hf: Any, tok: Any, *, name: str, model_type: str, route: str, dtype: torch.dtype, device: str,
           device_map: str | None, reload: Callable[[], Any] | None, keep_hf: bool = False) -> "TLHandle":
    tl_model = None
    if route == "hooked":
        try:
            tl_model = _hooked_from_hf(path, hf, tok, dtype, device)
        except (NotImplementedError, KeyError, AttributeError, ValueError):
            route = "bridge"  # an architecture TL's hooked loaders do not cover: the Bridge wraps HF as is
            hf = reload() if reload is not None else hf.to(device)
    if tl_model is None:
        from transformer_lens.model_bridge import TransformerBridge

        # the HF model is already placed (device_map applied at load): the Bridge uses it as is
        tl_model = TransformerBridge.boot_transformers(str(path), hf_model=hf, tokenizer=copy.deepcopy(tok),
                                                       dtype=dtype, device=None if device_map else device)
    elif not keep_hf:
        del hf
    tl_model.eval()
    tl_model.requires_grad_(False)
    return TLHandle(tl_model, tok, name=name, route=route, model_type=model_type, path=path, device=device)


class TLHandle(BaseHandle):
    """A TransformerLens model (``HookedTransformer`` or ``TransformerBridge``) behind the handle API."""

    backend = "tl"

    def __init__(self, model: Any, tokenizer: Any, *, name: str, route: str, model_type: str = "",
                 path: Path | None = None, device: str = "cpu") -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.route = route
        self.model_type = model_type
        self.path = path
        self._prefix: tuple[tuple[int, ...], Any] | None = None   # the patching fast path's last prefix KV cache
        cfg = model.cfg
        self.n_layers, self.d_model, self.n_heads, self.d_head = cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.d_head
        first = next(model.parameters())
        self.device = first.device
        self.dtype = first.dtype
        # HookedTransformer precomputes positions for cfg.n_ctx only (an IndexError past it); the Bridge runs
        # the HF model, whose config declares its own range
        hf_cfg = getattr(getattr(model, "original_model", None), "config", None)
        self.n_ctx = min_limit(getattr(cfg, "n_ctx", None), config_context(hf_cfg) if hf_cfg is not None else None)

    def embedding_matrix(self) -> Tensor:
        return self.model.W_E.detach()

    @property
    def hf_model(self) -> Any:
        """The wrapped ``transformers`` model on the Bridge route (for KV-cached generation), else None."""
        return getattr(self.model, "original_model", None) if self.route == "bridge" else None

    def _forward(self, batch: Batch, capture: tuple[SiteKey, ...], capture_positions: Tensor | None,
                 interventions: tuple[Intervention, ...], logit_positions: Tensor | None,
                 stop_at_layer: int | None, grad: bool) -> ForwardOut:
        by_key: dict[SiteKey, list[Intervention]] = {}
        for iv in interventions:
            by_key.setdefault(SiteKey(iv.site, iv.layer), []).append(iv)
        wanted = set(capture)
        acts: dict[SiteKey, Tensor] = {}

        def make_hook(key: SiteKey) -> Callable:
            ivs = by_key.get(key, [])

            def hook(act: Tensor, hook: Any) -> Tensor:
                act = apply_interventions(act, ivs, batch)
                if key in wanted:
                    acts[key], act = capture_and_route(act, batch, capture_positions, grad)
                return act

            return hook

        keys = sorted(set(by_key) | wanted)
        fwd_hooks = [(tl_hook_name(k.site, k.layer), make_hook(k)) for k in keys]
        kwargs: dict[str, Any] = {"attention_mask": batch.attention_mask}
        if self.route == "bridge":
            # HF computes positions from 0 on every row unless told (matters for GPT-2); logits_to_keep runs
            # the unembedding only where logits are wanted
            kwargs["position_ids"] = position_ids(batch)
            if stop_at_layer is None:
                kwargs["logits_to_keep"] = logit_columns(batch, logit_positions)
            out = self.model.run_with_hooks(batch.input_ids, fwd_hooks=fwd_hooks, stop_at_layer=stop_at_layer,
                                            return_type="logits", **kwargs)
            logits = None if stop_at_layer is not None else out
        else:
            # HookedTransformer unembeds every position; stop after the last block instead and unembed only
            # the wanted positions ([B, T, vocab] would not fit for a large vocabulary and long prompts)
            resid = self.model.run_with_hooks(batch.input_ids, fwd_hooks=fwd_hooks, return_type="logits",
                                              stop_at_layer=stop_at_layer or self.n_layers, **kwargs)
            logits = None if stop_at_layer is not None else self._unembed(resid, batch, logit_positions)
        return ForwardOut(logits=logits, acts={k: acts[k] for k in capture})

    def _unembed(self, resid: Tensor, batch: Batch, positions: Tensor | None) -> Tensor:
        cols = logit_columns(batch, positions)
        picked = resid[:, -1:] if isinstance(cols, int) else gather_columns(resid, batch, positions)
        logits = self.model.unembed(self.model.ln_final(picked))
        cap = getattr(self.model.cfg, "output_logits_soft_cap", 0.0) or 0.0
        if cap > 0:
            logits = cap * torch.tanh(logits / cap)
        return logits

    # -- the patching fast path (hooked route) -------------------------------------------------------------
    @torch.no_grad()
    def _patch_fast(self, site: str, target: Sequence[int], source: Sequence[int], cells: Sequence[Any], dt: Any,
                    batch_size: int) -> Any:
        from transformer_lens import HookedTransformer

        from interp_af.models.patching import PatchRun

        if self.route != "hooked" or not isinstance(self.model, HookedTransformer):
            return None
        from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

        m = self.model
        dev = m.cfg.device
        tgt = torch.tensor([list(target)], device=dev)
        src = torch.tensor([list(source)], device=dev)
        T = tgt.shape[1]
        f = next((i for i, (x, y) in enumerate(zip(target, source)) if x != y), T)
        layers = sorted({c.layer for c in cells})
        site_names = {tl_hook_name(site, L) for L in layers}
        start_names = {_start_name(site, L) for L in layers}
        kv = None
        if cells and 0 < f < T:  # keys/values of the untouched prefix, computed once for every run below
            kv = self._prefix_kv(tgt[:, :f])
        # the target's keys/values at every position, filled in by its reference run: a patch at position s
        # leaves positions before s untouched at every layer (attention is causal), so a row whose earliest
        # patched position is s runs positions s.. only, over the target's cache up to s
        kv_t = TransformerLensKeyValueCache.init_cache(m.cfg, dev, 1) if kv is None else _expand_cache(kv, 1, frozen=False)

        def reference(ids: Tensor, names: set[str], cache: Any) -> tuple[Tensor, Any]:
            """An unpatched run; with the prefix cached, of the suffix only (the prefix is the same in both
            prompts). It stops after the last block and unembeds the last position only: TL's default would
            unembed every position (T x vocab, about half a forward pass at a 49k vocabulary)."""
            return m.run_with_cache(ids if kv is None else ids[:, f:], names_filter=lambda n: n in names,
                                    stop_at_layer=self.n_layers, past_kv_cache=cache)

        resid_t, cache_t = reference(tgt, site_names | start_names, kv_t)
        resid_s, cache_s = reference(src, site_names, None if kv is None else _expand_cache(kv, 1))
        ld_t = float(self._last_logit_diff(resid_t, dt)[0])
        ld_s = float(self._last_logit_diff(resid_s, dt)[0])
        rows = 2.0 if kv is None else (f + 2 * (T - f)) / T
        if not cells:
            return PatchRun(torch.zeros(0, dtype=torch.float64), ld_t, ld_s, rows, "tl-prefix-cache")
        cut = 0 if kv is not None else f   # the cached activations hold positions f.. from here on
        out = torch.empty(len(cells), dtype=torch.float64)
        by_layer: dict[int, list[int]] = defaultdict(list)
        for i, c in enumerate(cells):
            by_layer[c.layer].append(i)
        # a position before f holds the same activation in both runs (the prompts agree up to f): no patch there
        eff = [tuple(p for p in c.positions if p >= f) for c in cells]
        for i, pos in enumerate(eff):
            if not pos:
                out[i] = ld_t
        for L, idx in by_layer.items():
            idx = [i for i in idx if eff[i]]
            start = L + 1 if site == "resid_post" else L
            resid0 = cache_t[_start_name(site, L)][:, cut:]
            src0 = cache_s[tl_hook_name(site, L)][:, cut:]
            for chunk in _chunks_by_start(idx, [min(p) if p else T for p in eff], T, batch_size):
                R = len(chunk)
                s0 = min(min(eff[i]) for i in chunk)   # this chunk runs positions s0..T-1
                mask = torch.zeros(R, T - s0, dtype=torch.bool, device=dev)
                for r, i in enumerate(chunk):
                    mask[r, [p - s0 for p in eff[i]]] = True
                resid = resid0[:, s0 - f:].expand(R, -1, -1)
                src_act = src0[:, s0 - f:]
                hooks = []
                if site in ("resid_pre", "resid_post"):
                    resid = torch.where(mask[..., None], src_act, resid)
                else:
                    full = mask[..., None]
                    if site == "head_out":
                        heads = torch.zeros(R, 1, src_act.shape[2], 1, dtype=torch.bool, device=dev)
                        for r, i in enumerate(chunk):
                            heads[r, 0, slice(None) if cells[i].head is None else cells[i].head] = True
                        full = mask[..., None, None] & heads

                    def patch(act: Tensor, hook: Any, full: Tensor = full, src_act: Tensor = src_act) -> Tensor:
                        return torch.where(full, src_act, act)

                    hooks.append((tl_hook_name(site, L), patch))
                with m.hooks(fwd_hooks=hooks):
                    # run the blocks only; norm + unembed just the last position (the vocab can be 128k wide)
                    final = m(resid, start_at_layer=start, stop_at_layer=self.n_layers,
                              past_kv_cache=_expand_cache(kv_t, R, upto=s0))
                out[chunk] = self._last_logit_diff(final, dt).double().cpu()
                rows += R * (T - s0) / T * (self.n_layers - start) / self.n_layers
        return PatchRun(out, ld_t, ld_s, rows, "tl-prefix-cache")

    def _prefix_kv(self, prefix: Tensor) -> Any:
        """The frozen keys/values of ``prefix`` (``[1, f]``), kept for the next call: every query of a study shares
        the system prompt before the cue, and every site and direction of one query shares its whole prefix, so
        it is computed once, not once per (query, site, direction). Read-only: runs read views of it."""
        from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

        key = tuple(prefix[0].tolist())
        held = self._prefix
        if held is not None and held[0] == key:
            return held[1]
        kv = TransformerLensKeyValueCache.init_cache(self.model.cfg, self.model.cfg.device, 1)
        self.model(prefix, past_kv_cache=kv, return_type=None)
        kv.freeze()
        self._prefix = (key, kv)
        return kv

    def _last_logit_diff(self, resid_BTD: Tensor, dt: Any) -> Tensor:
        """The metric at the last position from the two unembedding columns it reads. TL's ``Unembed`` copies the
        whole ``W_U.T`` (``.contiguous()``, 113 MB at a 49k vocabulary) on every call, ~80 ms each on CPU: per
        patched batch that cost more than the cells themselves."""
        from transformer_lens.utilities.activation_functions import apply_softcap

        m = self.model
        x = resid_BTD[:, -1]
        if m.cfg.normalization_type is not None:
            x = m.ln_final(x[:, None])[:, 0]
        ids = [dt.accept_id, dt.reject_id]
        two = apply_softcap(x @ m.unembed.W_U[:, ids] + m.unembed.b_U[ids], m.cfg.output_logits_soft_cap)
        return two[:, 0] - two[:, 1]


def _start_name(site: str, layer: int) -> str:
    """The residual stream a patched pass starts from: resid_post L is the input of block L+1."""
    return tl_hook_name("resid_post" if site == "resid_post" else "resid_pre", layer)


def _expand_cache(kv: Any, rows: int, *, upto: int | None = None, frozen: bool = True) -> Any:
    """A view of a batch-1 TL key/value cache repeated over ``rows`` rows, holding positions ``..upto`` (no copy of
    the tensors). Frozen: a pass reads it and appends nothing; unfrozen: a pass appends its own keys/values
    (to a new list: ``kv`` itself is left as it is)."""
    cut = slice(None, upto)
    out = copy.copy(kv)
    out.entries = [type(e)(e.past_keys[:, cut].expand(rows, -1, -1, -1), e.past_values[:, cut].expand(rows, -1, -1, -1),
                           frozen) for e in kv.entries]
    out.previous_attention_mask = kv.previous_attention_mask[:, cut].expand(rows, -1)
    out.frozen = frozen
    return out


def _chunks_by_start(idx: Sequence[int], starts: Sequence[int], T: int, batch_size: int) -> list[list[int]]:
    """Cells ``idx`` in batches that share a start position: sorted by their earliest patched position, at most
    ``batch_size`` a batch, and a new batch once a cell's suffix is at most half the batch's first (so a row runs
    under 2x the positions it needs, in about log2(T) + len(idx) / batch_size passes)."""
    chunks: list[list[int]] = []
    for i in sorted(idx, key=lambda i: starts[i]):
        if chunks and len(chunks[-1]) < batch_size and 2 * (T - starts[i]) > T - starts[chunks[-1][0]]:
            chunks[-1].append(i)
        else:
            chunks.append([i])
    return chunks
