"""The engines that run a batched patch grid for one twin pair.

A *cell* is one patch: a layer, optionally a head, and a set of prompt positions at which the target run's
activation at one site is replaced by the source run's. All cells of one query share the same target prompt,
so a batch is ``R`` copies of that prompt, row ``r`` carrying cell ``r``'s patch: a sweep over layers x
positions is a few batched passes, not one pass per cell.

Two engines, same answers:

- :class:`TLEngine` (a TransformerLens ``HookedTransformer``; the fast path). It skips what is known:
  positions before the first differing token are identical in both runs and causally untouched by any patch
  at or after it, so their keys/values are computed once (a *frozen prefix KV cache*) and every patched row
  only runs the suffix; and a patch at layer ``L`` starts the pass at ``L`` from the cached residual stream
  (``start_at_layer``), so nothing below ``L`` is recomputed.
- :class:`HandleEngine` (any :class:`~interp_af.models.handle.ModelHandle`, e.g. the nnsight backend): full
  passes through ``handle.forward`` with one :class:`~interp_af.models.interventions.Intervention` per group
  of rows.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import Tensor

TL_HOOKS = {
    "resid_pre": "blocks.{L}.hook_resid_pre",
    "resid_post": "blocks.{L}.hook_resid_post",
    "attn_out": "blocks.{L}.hook_attn_out",
    "mlp_out": "blocks.{L}.hook_mlp_out",
    "head_out": "blocks.{L}.attn.hook_z",
}


@dataclass(frozen=True)
class Cell:
    """One patch: ``site`` at ``layer`` (``head`` for head_out, None = all heads) at ``positions``."""

    layer: int
    head: int | None
    positions: tuple[int, ...]


def logit_diff_last(logits_BV: Tensor, dt: Any) -> Tensor:
    """logit(accept) - logit(reject) per row: the same quantity as :func:`interp_af.models.metric.logit_diff`."""
    return logits_BV[:, dt.accept_id] - logits_BV[:, dt.reject_id]


def hooked_transformer(model: Any) -> Any | None:
    """The TransformerLens ``HookedTransformer`` behind ``model`` (itself, or a TL handle's), else None."""
    try:
        from transformer_lens import HookedTransformer
    except ImportError:  # pragma: no cover - TL is a dependency
        return None
    if isinstance(model, HookedTransformer):
        return model
    for attr in ("model", "tl_model", "hooked", "_model"):
        inner = getattr(model, attr, None)
        if isinstance(inner, HookedTransformer):
            return inner
    return None


def _expand_cache(kv: Any, rows: int) -> Any:
    """A frozen view of a batch-1 TL key/value cache repeated over ``rows`` rows (no copy of the tensors)."""
    out = copy.copy(kv)
    out.entries = [type(e)(e.past_keys.expand(rows, -1, -1, -1), e.past_values.expand(rows, -1, -1, -1), True)
                   for e in kv.entries]
    out.previous_attention_mask = kv.previous_attention_mask.expand(rows, -1)
    out.frozen = True
    return out


class TLEngine:
    """Batched exact patching on a ``HookedTransformer`` with prefix-cache and start-at-layer skipping."""

    def __init__(self, model: Any):
        self.model = model
        self.n_layers = model.cfg.n_layers
        self.forward_rows = 0  # rows x (fraction of positions x fraction of layers) actually run: a cost counter

    @torch.no_grad()
    def run(self, site: str, target: Sequence[int], source: Sequence[int], first_diff: int,
            cells: Sequence[Cell], dt: Any, batch_size: int = 64) -> tuple[Tensor, float, float]:
        """Logit diff of every patched cell ``[C]``, of the unpatched target run, and of the source run."""
        from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

        m = self.model
        dev = m.cfg.device
        tgt = torch.tensor([list(target)], device=dev)
        src = torch.tensor([list(source)], device=dev)
        T, f = tgt.shape[1], first_diff
        layers = sorted({c.layer for c in cells})
        site_names = {TL_HOOKS[site].format(L=L) for L in layers}
        start_names = {self._start_name(site, L) for L in layers}
        logits_t, cache_t = m.run_with_cache(tgt, names_filter=lambda n: n in site_names | start_names)
        logits_s, cache_s = m.run_with_cache(src, names_filter=lambda n: n in site_names)
        ld_t = float(logit_diff_last(logits_t[:, -1], dt)[0])
        ld_s = float(logit_diff_last(logits_s[:, -1], dt)[0])
        if not cells:
            return torch.zeros(0), ld_t, ld_s
        kv = None
        if f > 0:  # keys/values of the untouched prefix, computed once for every row
            kv = TransformerLensKeyValueCache.init_cache(m.cfg, dev, 1)
            m(tgt[:, :f], past_kv_cache=kv, return_type=None)
            kv.freeze()
        out = torch.empty(len(cells), dtype=torch.float64)
        by_layer: dict[int, list[int]] = defaultdict(list)
        for i, c in enumerate(cells):
            by_layer[c.layer].append(i)
        for L, idx in by_layer.items():
            start = L + 1 if site == "resid_post" else L
            resid0 = cache_t[self._start_name(site, L)][:, f:]
            src_act = cache_s[TL_HOOKS[site].format(L=L)][:, f:]
            for lo in range(0, len(idx), batch_size):
                chunk = idx[lo:lo + batch_size]
                R = len(chunk)
                mask = torch.zeros(R, T - f, dtype=torch.bool, device=dev)
                for r, i in enumerate(chunk):
                    mask[r, [p - f for p in cells[i].positions]] = True
                resid = resid0.expand(R, -1, -1)
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

                    hooks.append((TL_HOOKS[site].format(L=L), patch))
                with m.hooks(fwd_hooks=hooks):
                    # run the blocks only; norm + unembed just the last position (the vocab can be 128k wide)
                    final = m(resid, start_at_layer=start, stop_at_layer=self.n_layers,
                              past_kv_cache=None if kv is None else _expand_cache(kv, R))
                out[chunk] = logit_diff_last(self._last_logits(final), dt).double().cpu()
                self.forward_rows += R * (T - f) / T * (self.n_layers - start) / self.n_layers
        return out, ld_t, ld_s

    def _last_logits(self, resid_BTD: Tensor) -> Tensor:
        from transformer_lens.utilities.activation_functions import apply_softcap

        m = self.model
        x = resid_BTD[:, -1:]
        if m.cfg.normalization_type is not None:
            x = m.ln_final(x)
        return apply_softcap(m.unembed(x), m.cfg.output_logits_soft_cap)[:, -1]

    def _start_name(self, site: str, L: int) -> str:
        # resid_post L is the input of block L+1 (or of the final norm for the last block)
        return f"blocks.{L}.hook_resid_post" if site == "resid_post" else f"blocks.{L}.hook_resid_pre"


class HandleEngine:
    """Batched exact patching through ``ModelHandle.forward`` (any backend): full passes, no skipping of layers."""

    def __init__(self, handle: Any):
        self.handle = handle
        self.forward_rows = 0

    @torch.no_grad()
    def run(self, site: str, target: Sequence[int], source: Sequence[int], first_diff: int,
            cells: Sequence[Cell], dt: Any, batch_size: int = 64) -> tuple[Tensor, float, float]:
        from interp_af.models.batch import collate
        from interp_af.models.interventions import Intervention
        from interp_af.models.sites import SiteKey

        h = self.handle
        pad = _pad_id(h.tokenizer)
        layers = sorted({c.layer for c in cells})
        keys = [SiteKey(site, L) for L in layers]
        out_s = h.forward(collate([list(source)], pad), capture=keys)
        out_t = h.forward(collate([list(target)], pad))
        ld_s = float(logit_diff_last(out_s.logits[:, -1], dt)[0])
        ld_t = float(logit_diff_last(out_t.logits[:, -1], dt)[0])
        self.forward_rows += 2
        res = torch.empty(len(cells), dtype=torch.float64)
        for lo in range(0, len(cells), batch_size):
            chunk = list(range(lo, min(lo + batch_size, len(cells))))
            groups: dict[tuple[int, int | None, int], list[int]] = defaultdict(list)
            for r, i in enumerate(chunk):
                c = cells[i]
                groups[(c.layer, c.head, len(c.positions))].append(r)
            ivs = []
            for (L, head, _), rows in groups.items():
                pos = torch.tensor([list(cells[chunk[r]].positions) for r in rows])
                act = out_s.acts[SiteKey(site, L)][0]  # [T, d] or [T, H, dh]
                value = act[pos]
                if site == "head_out" and head is not None:
                    value = value[..., head, :]
                ivs.append(Intervention(site=site, layer=L, op="replace", positions=pos, value=value,
                                        rows=torch.tensor(rows), head=head))
            out = h.forward(collate([list(target)] * len(chunk), pad), interventions=ivs)
            res[lo:lo + len(chunk)] = logit_diff_last(out.logits[:, -1], dt).double().cpu()
            self.forward_rows += len(chunk)
        return res, ld_t, ld_s


def _pad_id(tokenizer: Any) -> int:
    pad = getattr(tokenizer, "pad_token_id", None)
    if pad is None:
        pad = getattr(tokenizer, "eos_token_id", None)
    return int(pad or 0)


def make_engine(model: Any, engine: str = "auto") -> TLEngine | HandleEngine:
    """Pick the engine: ``"tl"`` (HookedTransformer fast path), ``"handle"`` or ``"auto"`` (tl when possible)."""
    from interp_af.errors import InterpAFError

    ht = hooked_transformer(model)
    if engine == "tl" or (engine == "auto" and ht is not None):
        if ht is None:
            raise InterpAFError("engine='tl' needs a TransformerLens HookedTransformer model; use engine='handle'")
        return TLEngine(ht)
    if engine in ("handle", "auto"):
        if not hasattr(model, "forward") or not hasattr(model, "backend"):
            raise InterpAFError(f"{type(model).__name__} is not a ModelHandle; load one with interp_af.models.load_model")
        return HandleEngine(model)
    raise InterpAFError(f"engine {engine!r} is unknown; use 'auto', 'tl' or 'handle'")
