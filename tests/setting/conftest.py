"""Fixtures for the setting tests: the four tiny tokenizers and a query set (real AdvBench when present)."""

from __future__ import annotations

import pytest
import transformers as tf

from interp_af.setting.queries import benign_queries, load_queries

# tiny model arch -> the chat-template style its tokenizer carries
STYLES = {"llama": "llama3", "qwen2": "chatml", "gemma2": "gemma", "gpt2": "none"}


@pytest.fixture(scope="session")
def tokenizers(tiny_models) -> dict:
    return {arch: tf.AutoTokenizer.from_pretrained(path) for arch, path in tiny_models.items()}


@pytest.fixture(scope="session")
def queries(advbench_path):
    """All 520 AdvBench goals (tests slice what they need), or the built-in benign set without the shared copy."""
    return load_queries(advbench_path) if advbench_path is not None else benign_queries()
