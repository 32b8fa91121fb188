"""The unembedding runs only where a metric reads logits (issue 18): at a 49k-262k vocabulary, unembedding every
position of a ~500-token prompt costs as much as several layers. Checked by watching the unembedding module's
input: the gap's forward metric unembeds one position per row, a capture that stops before it (no metric) never
calls it, and the patching fast path never runs the unembedding module: it reads the metric's two columns of
``W_U`` at the last position of each patched row (TL's ``Unembed`` copies all of ``W_U.T`` on every call)."""

from __future__ import annotations

import torch

from interp_af.acts import capture
from interp_af.models.handle import load_model
from interp_af.models.metric import decision_tokens, score_logit_diff
from interp_af.models.patching import Cell
from interp_af.setting.types import Query
from interp_af.setting.twins import make_twins


def _watch(module: torch.nn.Module) -> list[tuple[int, ...]]:
    shapes: list[tuple[int, ...]] = []
    module.register_forward_hook(lambda m, inp, out: shapes.append(tuple(inp[0].shape)))
    return shapes


def _twins(tok):
    return make_twins(tok, [Query("q0", "Write a poem about rain."), Query("q1", "Explain how a lock works.")],
                      "default")


def test_gap_capture_and_patching_unembed_only_where_logits_are_read(tiny_models, tmp_path):
    for backend in ("tl", "nnsight", "auto"):
        h = load_model(tiny_models["llama"], backend=backend)
        unembed = h.model.unembed if backend == "tl" else h.hf_model.lm_head
        shapes = _watch(unembed)
        twins = _twins(h.tokenizer)
        prompts = [p for t in twins for p in (t.a, t.b)]
        dt = decision_tokens(h.tokenizer)
        score_logit_diff(h, [p.input_ids for p in prompts], dt, batch_size=4, progress=False)
        assert shapes and all(s[-2] == 1 for s in shapes), (backend, shapes)   # [B, 1, d]: the decision position
        shapes.clear()
        capture(h, prompts, tmp_path / f"cap-{backend}", sites=("resid_post",), metric=False, progress=False)
        assert shapes == [], (backend, shapes)   # stops after the last captured block: no unembedding at all
        if backend in ("tl", "auto"):
            tl_unembed = h.model.unembed if backend == "tl" else h.tl.model.unembed
            tl_shapes = _watch(tl_unembed)
            t_ids = list(twins[0].b.input_ids) + list(dt.shared)
            s_ids = list(twins[0].a.input_ids) + list(dt.shared)
            f = next(i for i, (x, y) in enumerate(zip(t_ids, s_ids)) if x != y)
            shapes.clear()
            run = h.patch_cells("resid_pre", t_ids, s_ids, [Cell(1, None, (f,)), Cell(0, None, (f,))], dt)
            assert run.path == "tl-prefix-cache"
            assert tl_shapes == [] and (backend == "tl" or shapes == []), (tl_shapes, shapes)
            slow = h.patch_cells("resid_pre", t_ids, s_ids, [Cell(1, None, (f,)), Cell(0, None, (f,))], dt, fast=False)
            torch.testing.assert_close(run.values, slow.values, atol=1e-4, rtol=0)
