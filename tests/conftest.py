"""Shared fixtures: tiny local models of four real architectures, built once per test session.

No test downloads anything: the Hugging Face libraries are put offline before they are imported.
"""

from __future__ import annotations

import os

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ[_var] = "1"
os.environ["WANDB_MODE"] = "disabled"
os.environ.setdefault("INTERP_AF_PNG", "0")  # each PNG costs ~2 s of Chrome; figure tests write HTML
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ARCHS = ("llama", "qwen2", "gemma2", "gpt2")
ADVBENCH = Path(__file__).resolve().parents[2] / "shared" / "data" / "advbench_harmful_behaviors.csv"


def pytest_configure(config: pytest.Config) -> None:
    import torch

    # Under pytest-xdist each worker gets one thread: 2 workers x 2 threads would oversubscribe 2 cores.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{arch: path}`` of saved random-init models + trained tokenizers. Paths contain the family name on
    purpose ("tiny-llama", "tiny-gemma2"): TransformerLens picks architecture branches by substring of the
    path, and the handles must survive that."""
    from interp_af.testing.tiny import TinySpec, build_tiny_model

    root = tmp_path_factory.mktemp("tiny")
    return {arch: build_tiny_model(root / f"tiny-{arch}", TinySpec(arch=arch)) for arch in ARCHS}


@pytest.fixture(scope="session")
def advbench_path() -> Path | None:
    """The real AdvBench CSV when ``../shared/data`` is beside the checkout (tests fall back to built-ins)."""
    return ADVBENCH if ADVBENCH.exists() else None
