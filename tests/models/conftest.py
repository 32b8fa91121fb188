"""Handles of both backends on the four tiny architectures, loaded once per session, plus the plain HF models."""

from __future__ import annotations

import pytest
import torch

BACKENDS = ("tl", "nnsight")


@pytest.fixture(scope="session")
def handles(tiny_models):
    """Lazy ``{(arch, backend): handle}`` (each loaded on first use)."""
    from interp_af.models.handle import load_model

    cache: dict = {}

    def get(arch: str, backend: str):
        if (arch, backend) not in cache:
            cache[(arch, backend)] = load_model(tiny_models[arch], backend=backend)
        return cache[(arch, backend)]

    return get


@pytest.fixture(scope="session")
def hf_models(tiny_models):
    import transformers as tf

    cache: dict = {}

    def get(arch: str):
        if arch not in cache:
            cache[arch] = tf.AutoModelForCausalLM.from_pretrained(tiny_models[arch], dtype=torch.float32).eval()
        return cache[arch]

    return get


def random_prompts(lengths=(9, 5, 7), seed: int = 0, low: int = 5, high: int = 300) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(low, high, (n,), generator=g).tolist() for n in lengths]
