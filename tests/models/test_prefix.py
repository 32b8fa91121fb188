"""``forward(batch, after=handle.prefix(ids))``: a row that continues a cached prefix gives the numbers of the
whole prompt at its positions.

Expected before the run: logits and every captured site of the suffix equal the whole prompt's at the same
positions (float32 noise), on all four architectures; interventions and gradients work after a prefix; running
twice after the same prefix gives the same numbers (the cache is not modified); a backend without prefix
caching (TransformerLens) returns None from ``prefix`` and refuses ``after=`` in one line, as does a padded batch.
"""

from __future__ import annotations

import pytest
import torch

from interp_af.errors import InterpAFError
from interp_af.models.interventions import Intervention
from interp_af.models.sites import SITES, SiteKey
from tests.conftest import ARCHS
from tests.models.conftest import random_prompts

TOL = 1e-4


@pytest.mark.parametrize("arch", ARCHS)
def test_suffix_after_prefix_equals_the_whole_prompt(arch, handles):
    h = handles(arch, "nnsight")
    ids = random_prompts((13,), seed=4)[0]
    f = 8
    keys = [SiteKey(s, layer) for s in SITES for layer in range(h.n_layers)]
    whole = h.forward(h.collate([ids]), capture=keys, logit_positions=torch.tensor([[f, 12]]))
    pre = h.prefix(ids[:f])
    assert pre.length == f and pre.tokens == tuple(ids[:f])
    for _ in range(2):   # twice: the cached keys/values are not modified by a run
        part = h.forward(h.collate([ids[f:]]), capture=keys, logit_positions=torch.tensor([[0, 4]]), after=pre)
        assert (part.logits - whole.logits).abs().max() <= TOL
        for k in keys:
            assert (part.acts[k][0] - whole.acts[k][0, f:]).abs().max() <= TOL, k
    plain = h.forward(h.collate([ids[f:]]), after=pre)           # nothing captured: the plain HF call
    assert (plain.logits[0, -1] - whole.logits[0, -1]).abs().max() <= TOL


def test_interventions_and_gradients_after_a_prefix(handles):
    h = handles("llama", "nnsight")
    ids = random_prompts((11,), seed=5)[0]
    f = 6
    key = SiteKey("resid_pre", 1)
    add = lambda pos: [Intervention(site="resid_post", layer=0, op="add", positions=torch.tensor([[pos]]),  # noqa: E731
                                    value=torch.ones(h.d_model))]
    whole = h.forward(h.collate([ids]), capture=[key], interventions=add(f + 2), grad=True)
    whole.logits[0, 0, 7].backward()
    part = h.forward(h.collate([ids[f:]]), capture=[key], interventions=add(2), grad=True, after=h.prefix(ids[:f]))
    part.logits[0, 0, 7].backward()
    assert (part.logits - whole.logits).abs().max() <= TOL
    torch.testing.assert_close(part.acts[key].grad[0], whole.acts[key].grad[0, f:], atol=TOL, rtol=0)
    assert whole.acts[key].grad[0, f:].abs().sum() > 0


def test_backends_without_prefix_caching_and_bad_batches(handles):
    tl, nn = handles("llama", "tl"), handles("llama", "nnsight")
    ids = random_prompts((9,), seed=6)[0]
    assert tl.prefix(ids[:4]) is None
    pre = nn.prefix(ids[:4])
    with pytest.raises(InterpAFError, match="cannot run after a cached prefix"):
        tl.forward(tl.collate([ids[4:]]), after=pre)
    with pytest.raises(InterpAFError, match="one unpadded row"):
        nn.forward(nn.collate([ids[4:], ids[5:]]), after=pre)
