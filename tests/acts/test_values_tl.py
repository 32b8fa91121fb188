"""Acceptance: TransformerLens-backed captures equal plain transformers on the four tiny architectures."""

from __future__ import annotations

import pytest

from interp_af.models.handle import load_model

from .values import check_against_hf


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gemma2", "gpt2"])
def test_tl_capture_equals_transformers(arch, tiny_models, tmp_path):
    handle = load_model(tiny_models[arch], backend="tl")
    worst = check_against_hf(handle, tiny_models[arch], tmp_path / "cap")
    print(f"{arch} tl max abs diff {worst:.2e}")
