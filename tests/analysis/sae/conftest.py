"""Fixtures for the SAE tests: a TransformerLens handle on the tiny Llama, short twins, the decision tokens,
and two small TopK SAEs (layers 0 and 1) trained once per session with sae-lens's trainer."""

from __future__ import annotations

from pathlib import Path

import pytest

from .prompts import fake_prompts


@pytest.fixture(scope="session")
def sae_handle(tiny_models):
    from interp_af.models.handle import load_model

    return load_model(tiny_models["llama"], backend="tl")


@pytest.fixture(scope="session")
def sae_prompts(sae_handle):
    return fake_prompts(sae_handle.tokenizer, 6)


@pytest.fixture(scope="session")
def sae_dt(sae_handle):
    from interp_af.models.metric import decision_tokens

    return decision_tokens(sae_handle.tokenizer)


@pytest.fixture(scope="session")
def trained(sae_handle, sae_prompts, sae_dt, tmp_path_factory) -> dict[int, Path]:
    from interp_af.analysis.sae.train import SAETrainConfig, train_saes

    out = tmp_path_factory.mktemp("saes")
    cfg = SAETrainConfig(layers=(0, 1), d_sae=96, k=6, steps=80, batch_size=64, lr=2e-3)
    return {r.site.layer: r.path for r in train_saes(sae_handle, sae_prompts, out, cfg, dt=sae_dt)}


@pytest.fixture(scope="session")
def sae1(trained, sae_handle):
    from interp_af.analysis.sae.load import load_sae

    return load_sae(trained[1], handle=sae_handle)


@pytest.fixture(scope="session")
def sae0(trained, sae_handle):
    from interp_af.analysis.sae.load import load_sae

    return load_sae(trained[0], handle=sae_handle)
