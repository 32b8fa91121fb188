"""The TransformerLens patching fast path (``TLHandle._patch_fast``): what it skips, and that skipping changes nothing.

Expected before the run: rows that start at their earliest patched position give the generic path's numbers;
a patch before the first differing token is no patch (the unpatched target value, exactly); batches of rows
share a start and never run more than twice the positions a row needs; the prefix keys/values are computed once
for calls that share the prefix (other queries, sites, directions) and again for a different prefix.
"""

from __future__ import annotations

import torch

from interp_af.models.metric import decision_tokens, metric_inputs
from interp_af.models.patching import Cell, patch_generic
from interp_af.models.tl import _chunks_by_start
from tests.analysis._patch_helpers import twins


def _inputs(h, i=0, n=1):
    tw = twins(h, n)[i]
    dt = decision_tokens(h.tokenizer)
    return metric_inputs(tw.b.input_ids, dt), metric_inputs(tw.a.input_ids, dt), dt


def test_start_positions_and_prefix_positions(handles):
    """Rows start at their earliest patched position (cheaper than at the first difference, same numbers), and a
    position before the first difference is no patch at all (both runs hold the same activation there)."""
    tl = handles("llama", "tl")
    tgt, src, dt = _inputs(tl)
    f = next(i for i, (x, y) in enumerate(zip(tgt, src)) if x != y)
    T = len(tgt)
    cells = [Cell(L, None, (p,)) for L in range(tl.n_layers) for p in (f, f + 1, T - 1)]
    cells += [Cell(0, None, (f - 3,)), Cell(1, None, (f - 1, T - 2))]
    fast = tl.patch_cells("resid_pre", tgt, src, cells, dt)
    slow = patch_generic(tl, "resid_pre", tgt, src, cells, dt)
    assert fast.path == "tl-prefix-cache"
    torch.testing.assert_close(fast.values, slow.values, atol=1e-4, rtol=0)
    assert float(fast.values[-2]) == fast.target           # a prefix position changes nothing
    # the cost counts the positions each row ran: under one full pass per cell, under the first-difference scheme
    per_cell_at_f = (T - f) / T * 0.75                      # rows at layers 0 and 1 of 2: mean fraction 3/4
    assert fast.rows - (f + 2 * (T - f)) / T < len(cells) * per_cell_at_f


def test_chunks_by_start():
    starts = [10, 90, 50, 11, 95, 60]
    chunks = _chunks_by_start(range(6), starts, 100, batch_size=2)
    assert sorted(i for c in chunks for i in c) == list(range(6))
    assert all(len(c) <= 2 for c in chunks)
    for c in chunks:   # every row runs under 2x the positions it needs
        first = min(starts[i] for i in c)
        assert all(2 * (100 - starts[i]) > 100 - first for i in c)
    assert _chunks_by_start([], starts, 100, 4) == []


def test_prefix_keys_values_are_reused_across_calls_that_share_them(handles):
    tl = handles("llama", "tl")
    tgt, src, dt = _inputs(tl)
    f = next(i for i, (x, y) in enumerate(zip(tgt, src)) if x != y)
    cells = [Cell(L, None, (p,)) for L in range(tl.n_layers) for p in (f, len(tgt) - 1)]
    tl._prefix = None
    first = tl.patch_cells("resid_pre", tgt, src, cells, dt)
    held = tl._prefix[1]
    again = tl.patch_cells("mlp_out", tgt, src, cells, dt)            # another site, same prefix: reused
    assert tl._prefix[1] is held and tuple(tgt[:f]) == tl._prefix[0]
    assert torch.equal(tl.patch_cells("resid_pre", tgt, src, cells, dt).values, first.values)
    tgt2, src2, _ = _inputs(tl, 1, 2)                                 # another query: the system prompt is shared
    f2 = next(i for i, (x, y) in enumerate(zip(tgt2, src2)) if x != y)
    tl.patch_cells("resid_pre", tgt2, src2, [Cell(0, None, (f2,))], dt)
    assert tuple(tgt2[:f2]) == tuple(tgt[:f]) and tl._prefix[1] is held
    shorter = tgt[:f - 1] + [tgt[f - 1] + 1] + tgt[f:]                  # a different prefix: recomputed
    tl.patch_cells("resid_pre", shorter, src, cells[:1], dt)
    assert tl._prefix[1] is not held
    torch.testing.assert_close(again.values, patch_generic(tl, "mlp_out", tgt, src, cells, dt).values, atol=1e-4, rtol=0)
