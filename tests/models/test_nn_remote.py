"""The nnsight trace that ``remote=True`` sends to NDIF is the one that runs locally with ``remote=False``."""

from __future__ import annotations

import torch

from interp_af.models import nn as nnb
from interp_af.models.sites import SiteKey
from tests.models.conftest import random_prompts


def test_remote_flag_runs_the_same_trace_body(handles, monkeypatch):
    h = handles("llama", "nnsight")
    batch = h.collate(random_prompts())
    local = h.forward(batch, capture=[SiteKey("resid_post", 1)])

    seen = {"remote": [], "bodies": 0}
    real_trace = h.lm.trace
    real_body = nnb.trace_body

    def recording_trace(*args, remote=False, **kwargs):
        seen["remote"].append(remote)
        return real_trace(*args, remote=False, **kwargs)   # no NDIF here: run what would be sent, locally

    def counting_body(*args, **kwargs):
        seen["bodies"] += 1
        return real_body(*args, **kwargs)

    monkeypatch.setattr(h.lm, "trace", recording_trace, raising=False)
    monkeypatch.setattr(nnb, "trace_body", counting_body)
    monkeypatch.setattr(h, "remote", True)
    remote = h.forward(batch, capture=[SiteKey("resid_post", 1)])
    assert seen == {"remote": [True], "bodies": 1}
    from cloudpickle.cloudpickle import _PICKLE_BY_VALUE_MODULES

    assert set(nnb.REMOTE_MODULES) <= set(_PICKLE_BY_VALUE_MODULES)   # NDIF gets our code by value
    torch.testing.assert_close(remote.logits, local.logits)
    torch.testing.assert_close(remote.acts[SiteKey("resid_post", 1)], local.acts[SiteKey("resid_post", 1)])
