"""Interventions do what they say, identically on both backends."""

from __future__ import annotations

import pytest
import torch

from interp_af.errors import InterpAFError
from interp_af.models.interventions import Intervention
from interp_af.models.sites import SiteKey
from tests.models.conftest import BACKENDS, random_prompts

TOL = 1e-4
CASES = [(a, b) for a in ("llama", "gemma2", "gpt2") for b in BACKENDS]


def twin_prompts(n: int = 9, cue: int = 3):
    """Two prompts that differ only at position ``cue``, plus a third of another length."""
    a, c = random_prompts((n, 6), seed=5)
    b = list(a)
    b[cue] = a[cue] + 1
    return a, b, c


@pytest.mark.parametrize(("arch", "backend"), CASES)
def test_replace_with_twin_activation_reproduces_its_downstream_values(arch, backend, handles):
    h = handles(arch, backend)
    a, b, c = twin_prompts()
    batch = h.collate([a, b, c])
    clean = h.forward(batch, capture=[SiteKey("resid_pre", 0), SiteKey("resid_post", 1)])
    # the embedding of the cue token is all that differs: patch it from row 0 into row 1
    cue_act = clean.acts[SiteKey("resid_pre", 0)][0:1, 3:4]        # padded column == prompt index (no pad)
    iv = Intervention("resid_pre", 0, "replace", torch.tensor([[3]]), cue_act, rows=torch.tensor([1]))
    out = h.forward(batch, interventions=[iv], capture=[SiteKey("resid_post", 1)])
    torch.testing.assert_close(out.logits[1], clean.logits[0], atol=TOL, rtol=0)
    torch.testing.assert_close(out.acts[SiteKey("resid_post", 1)][1], clean.acts[SiteKey("resid_post", 1)][0],
                               atol=TOL, rtol=0)
    assert (clean.logits[1] - clean.logits[0]).abs().max() > 1e-3       # the patch did change something
    torch.testing.assert_close(out.logits[[0, 2]], clean.logits[[0, 2]])  # other rows untouched


@pytest.mark.parametrize(("arch", "backend"), CASES)
def test_head_out_replace_whole_and_per_head(arch, backend, handles):
    h = handles(arch, backend)
    a, b, c = twin_prompts()
    batch = h.collate([a, b, c])
    keys = [SiteKey("head_out", 1), SiteKey("attn_out", 1)]
    clean = h.forward(batch, capture=keys)
    z0 = clean.acts[SiteKey("head_out", 1)][0:1]                      # [1, T, H, dh]
    pos = torch.arange(len(a))[None]
    whole = h.forward(batch, capture=keys, interventions=[
        Intervention("head_out", 1, "replace", pos, z0, rows=torch.tensor([1]))])
    # attn_out is W_O applied to the heads: replacing every head reproduces row 0's attention output
    torch.testing.assert_close(whole.acts[SiteKey("attn_out", 1)][1], clean.acts[SiteKey("attn_out", 1)][0],
                               atol=TOL, rtol=0)
    per_head = h.forward(batch, capture=keys, interventions=[
        Intervention("head_out", 1, "replace", pos, z0[..., k, :], rows=torch.tensor([1]), head=k)
        for k in range(h.n_heads)])
    torch.testing.assert_close(per_head.logits, whole.logits, atol=TOL, rtol=0)
    one = h.forward(batch, capture=keys, interventions=[
        Intervention("head_out", 1, "replace", pos, z0[..., 2, :], rows=torch.tensor([1]), head=2)])
    z = one.acts[SiteKey("head_out", 1)][1]
    torch.testing.assert_close(z[:, 2], z0[0, :, 2])
    keep = [k for k in range(h.n_heads) if k != 2]
    torch.testing.assert_close(z[:, keep], clean.acts[SiteKey("head_out", 1)][1][:, keep])


@pytest.mark.parametrize(("arch", "backend"), CASES)
def test_add_and_project_out(arch, backend, handles):
    h = handles(arch, backend)
    prompts = random_prompts((9, 5, 7), seed=7)
    batch = h.collate(prompts)
    pos = torch.tensor([[2, 8], [0, 4], [3, 6]])
    key = SiteKey("mlp_out", 0)
    clean = h.forward(batch, capture=[key], capture_positions=pos)
    v = torch.randn(h.d_model, generator=torch.Generator().manual_seed(0))
    added = h.forward(batch, capture=[key], capture_positions=pos,
                      interventions=[Intervention("mlp_out", 0, "add", pos[1:], v, rows=torch.tensor([1, 2]))])
    torch.testing.assert_close(added.acts[key][1:], clean.acts[key][1:] + v, atol=TOL, rtol=0)
    torch.testing.assert_close(added.acts[key][0], clean.acts[key][0])
    proj = h.forward(batch, capture=[key], capture_positions=pos,
                     interventions=[Intervention("mlp_out", 0, "project_out", pos, 3 * v)])
    u = v / v.norm()
    got = proj.acts[key]
    assert (got @ u).abs().max() < 1e-4                                           # component removed
    want = clean.acts[key] - (clean.acts[key] @ u)[..., None] * u                 # and nothing else changed
    torch.testing.assert_close(got, want, atol=TOL, rtol=0)
    assert (proj.logits - clean.logits).abs().max() > 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_intervention_inputs(backend, handles):
    h = handles("llama", backend)
    batch = h.collate(random_prompts())
    pos = torch.zeros(3, 1, dtype=torch.long)
    with pytest.raises(InterpAFError, match="valid sites"):
        h.forward(batch, interventions=[Intervention("resid_mid", 0, "add", pos, torch.zeros(h.d_model))])
    with pytest.raises(InterpAFError, match="valid layers: 0..1"):
        h.forward(batch, interventions=[Intervention("mlp_out", 5, "add", pos, torch.zeros(h.d_model))])
    with pytest.raises(InterpAFError, match="head"):
        h.forward(batch, interventions=[Intervention("mlp_out", 0, "add", pos, torch.zeros(4), head=1)])
    with pytest.raises(InterpAFError, match="outside its prompt"):
        h.forward(batch, interventions=[Intervention("mlp_out", 0, "add", pos + 6, torch.zeros(h.d_model))])
    with pytest.raises(InterpAFError, match=r"must broadcast to \[rows, positions, 64\]"):
        h.forward(batch, interventions=[Intervention("mlp_out", 0, "replace", pos, torch.zeros(3, 1, 32))])
    with pytest.raises(InterpAFError, match=r"direction of shape \(64,\)"):
        h.forward(batch, interventions=[Intervention("mlp_out", 0, "project_out", pos, torch.zeros(3, 64))])
    with pytest.raises(InterpAFError, match=r"4, 16"):
        h.forward(batch, interventions=[Intervention("head_out", 0, "replace", pos, torch.zeros(3, 1, 64))])
    with pytest.raises(InterpAFError, match="op 'scale'"):
        Intervention("mlp_out", 0, "scale", pos, torch.zeros(1))
