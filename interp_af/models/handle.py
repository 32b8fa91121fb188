"""One interface to a language model, whatever runs it: TransformerLens or nnsight.

A :class:`ModelHandle` runs a left-padded :class:`~interp_af.models.batch.Batch` once and, in that single
pass, (1) captures activations at canonical sites (``resid_pre``, ``resid_post``, ``attn_out``, ``mlp_out``,
``head_out``; see :mod:`interp_af.models.sites`) at chosen prompt positions, (2) applies a list of
interventions (replace / add / project_out, per row, per head), (3) returns logits at chosen positions, or
stops early after a layer. Positions are always *prompt coordinates* (index into the un-padded prompt), so
callers never see the padding. Where the backend can (nnsight, ``auto``), ``handle.prefix(ids)`` computes a
prompt prefix's keys/values once and ``forward(row, after=prefix)`` runs only the tokens after it (positions
then index that row): both arms of a twin share everything before the cue, so attribution runs it once.

Order inside one site: interventions are applied first, then the capture reads the (edited) activation
that flows downstream. With ``grad=True`` the pass keeps its graph and captured tensors get ``.grad`` from
a later ``backward()``; weights are frozen, so gradients only flow to activations.

:func:`load_model` resolves a local folder or Hub id, applies an optional PEFT adapter, and returns the
backend's handle: ``"auto"`` (the default: nnsight for forward passes and gradients, TransformerLens's fast
path for exact patch grids, over the same weights; :mod:`interp_af.models.routed`), ``"tl"`` (TransformerLens:
``HookedTransformer`` with folding off where TL supports the
architecture, ``TransformerBridge`` elsewhere) or ``"nnsight"`` (local trace, or the same trace on NDIF with
``remote=True``). Both give plain Hugging Face numerics. ``model`` may also be a ``.gguf`` file or a packaged
model's name (``smollm2-135m-instruct``, ``gemma-3-270m``); such handles carry ``source`` (the GGUF's sha256)
and ``weights_note`` ("dequantised ... weights, not the original checkpoint"). ``handle.n_ctx`` is the
model's context; ``forward`` refuses a longer batch in one line (:mod:`interp_af.models.context`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

import torch
from torch import Tensor

from interp_af.errors import InterpAFError
from interp_af.models.batch import Batch, collate, pad_id_of
from interp_af.models.interventions import Intervention
from interp_af.models.sites import SITES, SiteKey

BACKENDS: tuple[str, ...] = ("auto", "tl", "nnsight")


@dataclass(frozen=True)
class ForwardOut:
    """What one forward pass returns.

    ``logits``: ``[B, L, vocab]`` at ``logit_positions`` (default: the last prompt token, L = 1); None when
    ``stop_at_layer`` cut the pass short. ``acts``: ``{SiteKey: [B, P, d]}`` (``[B, P, n_heads, d_head]``
    for ``head_out``) at ``capture_positions``, or ``[B, T, ...]`` in padded columns when those are None.
    """

    logits: Tensor | None
    acts: Mapping[SiteKey, Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class Prefix:
    """The keys/values of a prompt prefix (``length`` tokens, one row), computed once without gradients
    (:meth:`BaseHandle.prefix`): ``forward(batch, after=prefix)`` then runs ``batch`` as the tokens that follow
    it, so work shared by several runs of the same prefix (both arms of a twin share everything before the cue)
    is done once, and a backward pass stops at the prefix. ``cache`` is backend-specific; runs never modify it."""

    cache: Any
    length: int
    tokens: tuple[int, ...]


@runtime_checkable
class ModelHandle(Protocol):
    name: str
    backend: str
    tokenizer: Any
    n_layers: int
    d_model: int
    n_heads: int
    d_head: int
    device: torch.device
    dtype: torch.dtype

    def sites(self) -> tuple[str, ...]: ...

    def forward(self, batch: Batch, *, capture: Sequence[SiteKey] = (), capture_positions: Tensor | None = None,
                interventions: Sequence[Intervention] = (), logit_positions: Tensor | None = None,
                stop_at_layer: int | None = None, grad: bool = False) -> ForwardOut: ...


class BaseHandle:
    """Shared checks and conveniences; a backend implements :meth:`_forward`."""

    name: str
    backend: str
    tokenizer: Any
    n_layers: int
    d_model: int
    n_heads: int
    d_head: int
    device: torch.device
    dtype: torch.dtype
    model_type: str = ""
    path: Path | None = None
    n_ctx: int | None = None                       # context in tokens (None = unknown: not checked)
    source: Mapping[str, Any] = MappingProxyType({})   # provenance of converted weights (GGUF sha256, ...), else {}

    def sites(self) -> tuple[str, ...]:
        return SITES

    @property
    def weights_note(self) -> str:
        """What the weights are when they are not the original checkpoint (e.g. "dequantised Q4_1 weights, not
        the original checkpoint"); "" for an ordinary model folder."""
        return str(self.source.get("weights_note", ""))

    @property
    def pad_id(self) -> int:
        return pad_id_of(self.tokenizer)

    def collate(self, prompts: Sequence[Sequence[int]]) -> Batch:
        """Left-pad token-id prompts (``RenderedPrompt.input_ids``) with this tokenizer's pad id."""
        return collate(prompts, self.pad_id)

    def embedding_matrix(self) -> Tensor:
        """Input embeddings ``W_E`` ``[vocab, d_model]`` (unscaled, as stored)."""
        raise NotImplementedError

    @property
    def hf_model(self) -> Any:
        """The plain ``transformers`` model when the backend runs one locally (else None)."""
        return None

    # -- checks -----------------------------------------------------------------------------------------
    def check_site(self, site: str, layer: int, what: str = "site") -> None:
        if site not in SITES:
            raise InterpAFError(f"{what} {site!r} does not exist; valid sites: {', '.join(SITES)}")
        if not (0 <= int(layer) < self.n_layers):
            raise InterpAFError(f"{what} {site!r} layer {layer} does not exist; valid layers: 0..{self.n_layers - 1}")

    def _check_positions(self, positions: Tensor, lengths: Tensor, what: str) -> None:
        if positions.dim() != 2 or positions.shape[0] != lengths.shape[0]:
            raise InterpAFError(f"{what} must have shape [rows, P] with one row per batch row "
                                f"({lengths.shape[0]}); got {tuple(positions.shape)}")
        bad = (positions < 0) | (positions >= lengths.to(positions.device)[:, None])
        if bool(bad.any()):
            r = int(bad.any(dim=1).nonzero()[0])
            raise InterpAFError(f"{what} row {r} has a position outside its prompt (length {int(lengths[r])}); "
                                "positions are prompt coordinates 0..length-1")

    def check_request(self, batch: Batch, capture: Sequence[SiteKey], capture_positions: Tensor | None,
                      interventions: Sequence[Intervention], logit_positions: Tensor | None,
                      stop_at_layer: int | None, extra_width: int = 0) -> None:
        from interp_af.models.context import check_batch_width

        check_batch_width(self, int(batch.input_ids.shape[1]) + extra_width, batch.lengths.tolist())
        if stop_at_layer is not None and not (1 <= stop_at_layer <= self.n_layers):
            raise InterpAFError(f"stop_at_layer={stop_at_layer} is out of range; use 1..{self.n_layers} "
                                "(the number of blocks to run) or None")
        limit = self.n_layers if stop_at_layer is None else stop_at_layer
        for key in capture:
            self.check_site(key.site, key.layer, "capture site")
            if key.layer >= limit:
                raise InterpAFError(f"capture {key} lies past stop_at_layer={stop_at_layer}; raise stop_at_layer "
                                    f"above {key.layer} or drop the capture")
        if capture_positions is not None:
            self._check_positions(capture_positions, batch.lengths, "capture_positions")
        if logit_positions is not None:
            self._check_positions(logit_positions, batch.lengths, "logit_positions")
        for iv in interventions:
            self.check_site(iv.site, iv.layer, "intervention site")
            if iv.layer >= limit:
                raise InterpAFError(f"intervention at {iv.site}.{iv.layer} lies past stop_at_layer={stop_at_layer}")
            if iv.head is not None and (iv.site != "head_out" or not 0 <= iv.head < self.n_heads):
                raise InterpAFError(f"intervention head={iv.head} needs site 'head_out' and a head in "
                                    f"0..{self.n_heads - 1}")
            rows = iv.rows if iv.rows is not None else torch.arange(batch.input_ids.shape[0])
            if bool(((rows < 0) | (rows >= batch.input_ids.shape[0])).any()):
                raise InterpAFError(f"intervention rows {rows.tolist()} fall outside the batch of "
                                    f"{batch.input_ids.shape[0]} rows")
            self._check_positions(iv.positions, batch.lengths[rows.cpu()],
                                  f"intervention {iv.site}.{iv.layer} positions")
            self._check_value(iv, len(rows))

    def _check_value(self, iv: Intervention, n_rows: int) -> None:
        """The value's shape must fit the op (one line naming the expected shape otherwise)."""
        if iv.site != "head_out":
            trail: tuple[int, ...] = (self.d_model,)
        else:
            trail = (self.d_head,) if iv.head is not None else (self.n_heads, self.d_head)
        shape = tuple(iv.value.shape)
        where = f"intervention {iv.op} at {iv.site}.{iv.layer}"
        if iv.op == "project_out":
            ok = shape == trail or (iv.site == "head_out" and iv.head is None and shape == (self.d_head,))
            if not ok:
                raise InterpAFError(f"{where}: direction has shape {shape}; pass a direction of shape {trail}")
            return
        full = (n_rows, iv.positions.shape[1], *trail)
        try:
            fits = torch.broadcast_shapes(shape, full) == full
        except RuntimeError:
            fits = False
        if not fits or (iv.op == "replace" and shape[-len(trail):] != trail):
            raise InterpAFError(f"{where}: value has shape {shape}; it must broadcast to [rows, positions, "
                                f"{', '.join(map(str, trail))}] = {list(full)}")

    # -- the pass -----------------------------------------------------------------------------------------
    def forward(self, batch: Batch, *, capture: Sequence[SiteKey] = (), capture_positions: Tensor | None = None,
                interventions: Sequence[Intervention] = (), logit_positions: Tensor | None = None,
                stop_at_layer: int | None = None, grad: bool = False, after: Prefix | None = None) -> ForwardOut:
        """One pass (module docstring). ``after``: a :class:`Prefix` from :meth:`prefix`; ``batch`` is then one
        unpadded row of the tokens that follow it, and positions (captures, interventions, logits) index that
        row, not the whole prompt."""
        capture = tuple(dict.fromkeys(capture))
        if after is not None and (batch.input_ids.shape[0] != 1 or not bool(batch.attention_mask.all())):
            raise InterpAFError("forward(after=prefix) runs one unpadded row after the prefix; got "
                                f"{batch.input_ids.shape[0]} rows")
        self.check_request(batch, capture, capture_positions, interventions, logit_positions, stop_at_layer,
                           extra_width=0 if after is None else after.length)
        batch = batch.to(self.device)
        with torch.set_grad_enabled(grad):
            if after is not None:
                return self._forward_after(after, batch, capture, capture_positions, tuple(interventions),
                                           logit_positions, stop_at_layer, grad)
            return self._forward(batch, capture, capture_positions, tuple(interventions), logit_positions,
                                 stop_at_layer, grad)

    def prefix(self, ids: Sequence[int]) -> Prefix | None:
        """The keys/values of ``ids`` for ``forward(..., after=)``, or None where the backend cannot run after a
        cached prefix (callers then run whole prompts)."""
        return None

    def _forward_after(self, after: Prefix, batch: Batch, capture: tuple[SiteKey, ...],
                       capture_positions: Tensor | None, interventions: tuple[Intervention, ...],
                       logit_positions: Tensor | None, stop_at_layer: int | None, grad: bool) -> ForwardOut:
        raise InterpAFError(f"the {self.backend} backend cannot run after a cached prefix; run the whole prompt")

    def _forward(self, batch: Batch, capture: tuple[SiteKey, ...], capture_positions: Tensor | None,
                 interventions: tuple[Intervention, ...], logit_positions: Tensor | None,
                 stop_at_layer: int | None, grad: bool) -> ForwardOut:
        raise NotImplementedError

    # -- activation patching ----------------------------------------------------------------------------
    def patch_cells(self, site: str, target: Sequence[int], source: Sequence[int], cells: Sequence[Any],
                    dt: Any, *, batch_size: int = 64, fast: bool = True) -> Any:
        """Run every :class:`~interp_af.models.patching.Cell` (the ``target`` prompt with ``site`` replaced by the
        ``source`` prompt's activation there) -> :class:`~interp_af.models.patching.PatchRun`. Uses the
        backend's fast path when it has one (``fast=False``: the generic path, same numbers)."""
        from interp_af.models.patching import patch_generic

        if fast:
            run = self._patch_fast(site, target, source, cells, dt, batch_size)
            if run is not None:
                return run
        return patch_generic(self, site, target, source, cells, dt, batch_size)

    def _patch_fast(self, site: str, target: Sequence[int], source: Sequence[int], cells: Sequence[Any], dt: Any,
                    batch_size: int) -> Any:
        """A backend's faster implementation of :meth:`patch_cells` (None = use the generic one)."""
        return None

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, backend={self.backend!r}, n_layers={self.n_layers}, "
                f"d_model={self.d_model}, n_heads={self.n_heads}, dtype={self.dtype}, device={self.device})")


def position_ids(batch: Batch) -> Tensor:
    """Per-row positions that start at 0 on the first real token (what an unpadded run would use)."""
    return (batch.attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def load_model(model: str | Path, *, backend: str = "auto", adapter: str | Path | None = None, dtype: str = "float32",
               device: str = "cpu", device_map: str | None = None, remote: bool = False,
               trust_remote_code: bool = False, tl_route: str = "auto") -> BaseHandle:
    """Load ``model`` (local folder, Hub id, ``.gguf`` file or packaged model name) with ``backend``
    ("auto" | "tl" | "nnsight"; "auto", the default, runs forward passes and gradients through nnsight and exact
    patch grids through TransformerLens's fast path, over the same weights: :mod:`interp_af.models.routed`).

    ``adapter``: a PEFT adapter folder, merged into the weights. ``device_map`` (e.g. "auto") is passed to
    transformers/accelerate for several GPUs. ``remote=True`` (nnsight only) runs traces on NDIF.
    ``tl_route``: "auto" | "hooked" | "bridge" (TransformerLens only). ``device`` is checked first (a GPU
    that is not there is one line, before any weight is read). An object the user already holds
    (``HookedTransformer``, ``TransformerBridge``, nnsight ``LanguageModel``, a handle) is wrapped as it is
    (:func:`interp_af.models.wrap.as_handle`).
    """
    if not isinstance(model, (str, Path)):
        from interp_af.models.wrap import as_handle

        return as_handle(model)
    if backend not in BACKENDS:
        raise InterpAFError(f"backend {backend!r} is unknown; use one of {', '.join(BACKENDS)}")
    if remote and backend == "auto":
        backend = "nnsight"   # NDIF runs nnsight traces: the only route there
    if remote and backend != "nnsight":
        raise InterpAFError("remote=True needs backend='nnsight' (NDIF runs nnsight traces)")
    from interp_af.models.devices import check_device
    from interp_af.models.hub import parse_dtype

    check_device(device)

    torch_dtype = parse_dtype(dtype)
    if backend == "tl":
        from interp_af.models.tl import load_tl

        return load_tl(model, adapter=adapter, dtype=torch_dtype, device=device, device_map=device_map,
                       trust_remote_code=trust_remote_code, route=tl_route)
    if backend == "auto":
        from interp_af.models.routed import load_routed

        return load_routed(model, adapter=adapter, dtype=torch_dtype, device=device, device_map=device_map,
                           trust_remote_code=trust_remote_code)
    from interp_af.models.nn import load_nnsight

    return load_nnsight(model, adapter=adapter, dtype=torch_dtype, device=device, device_map=device_map,
                        remote=remote, trust_remote_code=trust_remote_code)
