"""The ``auto`` backend: each kind of work on the route that does it fastest, with the same numbers.

The two backends are not equally fast at everything (``benchmarks/RESULTS.md``, issue 18):

- a **forward pass**, with or without gradients (the gap's metric, capture, probes' inputs, steering, SAE
  splicing, attribution patching, integrated gradients, SAE attribution) costs about 1.0x the ``transformers``
  forward through nnsight, which runs the Hugging Face model itself (fused attention), and about 2x through
  TransformerLens's ``HookedTransformer``, which computes attention its own way;
- **exact activation patching** has a fast path only on the TransformerLens hooked route (a prefix KV cache, a
  pass that starts at the patched layer and at the earliest patched position): through nnsight every cell is
  a full pass.

:class:`RoutedHandle` loads the Hugging Face model once, runs every forward through nnsight on it, and builds
the TransformerLens model from the same weights **on first need** only (a patch grid), so a study that never
patches never pays for it. Both routes give raw Hugging Face numerics (no folded layer norms), so a number does
not depend on which route computed it (``tests/models/test_routed.py``: logits, captures, interventions,
gradients and patch grids within float32 noise of the TransformerLens backend).

Memory: once the TransformerLens model exists, the weights are held twice (its layout is a copy); set
``backend = "nnsight"`` (or ``"tl"``) to hold one copy. With ``remote=True`` the ``auto`` backend is nnsight on
NDIF; where TransformerLens reaches an architecture only through its Bridge (Gemma 2 and 3) or the model is
spread over several GPUs (``device_map``), the Bridge has no fast path, so patch grids run the generic path on
nnsight and no second copy is made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor

from interp_af.models.batch import Batch
from interp_af.models.handle import BaseHandle, ForwardOut
from interp_af.models.interventions import Intervention
from interp_af.models.sites import SiteKey


class RoutedHandle(BaseHandle):
    """One model, two routes: nnsight for forward passes, TransformerLens (built lazily) for exact patch grids.

    ``route`` says which route does what; ``tl_built`` whether the TransformerLens side exists yet.
    """

    backend = "auto"

    def __init__(self, fwd: Any, *, path: Path | None, adapter: Any = None, dtype: torch.dtype = torch.float32,
                 device: str = "cpu", device_map: str | None = None, trust_remote_code: bool = False) -> None:
        self.fwd = fwd
        self.tokenizer = fwd.tokenizer
        self.name = fwd.name
        self.path = path
        self.model_type = fwd.model_type
        self.n_layers, self.d_model, self.n_heads, self.d_head = fwd.n_layers, fwd.d_model, fwd.n_heads, fwd.d_head
        self.device, self.dtype, self.n_ctx = fwd.device, fwd.dtype, fwd.n_ctx
        self._tl_args = dict(adapter=adapter, dtype=dtype, device=device, device_map=device_map,
                             trust_remote_code=trust_remote_code)
        self._tl: Any = None
        self._no_fast = False     # set once TL's hooked route turned out not to cover this model

    @property
    def source(self) -> Any:  # type: ignore[override]
        return self.fwd.source

    @source.setter
    def source(self, value: Any) -> None:
        self.fwd.source = value

    @property
    def route(self) -> str:
        tl = "not built yet" if self._tl is None else f"tl {self._tl.route}"
        return f"forward and gradients: nnsight; patch grids: {tl}"

    @property
    def tl_built(self) -> bool:
        return self._tl is not None

    @property
    def hf_model(self) -> Any:
        """The plain ``transformers`` model both routes read (for KV-cached generation and weight fingerprints)."""
        return self.fwd.hf_model

    def embedding_matrix(self) -> Tensor:
        return self.fwd.embedding_matrix()

    @property
    def tl(self) -> Any:
        """The TransformerLens handle over the same weights (built on first access: a patch grid)."""
        if self._tl is None:
            from interp_af.models.tl import tl_from_hf

            self._tl = tl_from_hf(self.path, self.fwd.hf_model, self.tokenizer, name=self.name,
                                  model_type=self.model_type, **self._tl_args)
            self._tl.source = self.source
        return self._tl

    def _forward(self, batch: Batch, capture: tuple[SiteKey, ...], capture_positions: Tensor | None,
                 interventions: tuple[Intervention, ...], logit_positions: Tensor | None,
                 stop_at_layer: int | None, grad: bool) -> ForwardOut:
        return self.fwd._forward(batch, capture, capture_positions, interventions, logit_positions, stop_at_layer,
                                 grad)

    def prefix(self, ids: Sequence[int]) -> Any:
        return self.fwd.prefix(ids)

    def _forward_after(self, after: Any, batch: Batch, capture: tuple[SiteKey, ...], capture_positions: Tensor | None,
                       interventions: tuple[Intervention, ...], logit_positions: Tensor | None,
                       stop_at_layer: int | None, grad: bool) -> ForwardOut:
        return self.fwd._forward_after(after, batch, capture, capture_positions, interventions, logit_positions,
                                       stop_at_layer, grad)

    def _patch_fast(self, site: str, target: Sequence[int], source: Sequence[int], cells: Sequence[Any], dt: Any,
                    batch_size: int) -> Any:
        from interp_af.models.tl import needs_bridge

        if self._no_fast or needs_bridge(self.model_type, self._tl_args["device_map"]):
            return None   # the Bridge has no fast path: the generic path, on nnsight, without a second copy
        if self.tl.route != "hooked":   # TL's hooked loaders refused this architecture: drop the Bridge built instead
            self._tl, self._no_fast = None, True
            return None
        return self.tl._patch_fast(site, target, source, cells, dt, batch_size)


def load_routed(model: str | Path, *, adapter: Any = None, dtype: torch.dtype = torch.float32, device: str = "cpu",
                device_map: str | None = None, trust_remote_code: bool = False) -> RoutedHandle:
    """Load ``model`` for the ``auto`` backend (the HF weights once; TransformerLens on first need)."""
    from interp_af.models.nn import load_nnsight

    fwd = load_nnsight(model, adapter=adapter, dtype=dtype, device=device, device_map=device_map,
                       trust_remote_code=trust_remote_code)
    return RoutedHandle(fwd, path=fwd.path, adapter=adapter, dtype=dtype, device=device, device_map=device_map,
                        trust_remote_code=trust_remote_code)
