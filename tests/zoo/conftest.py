"""The zoo, built once per test session into a temporary folder, and its models loaded per backend."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest

BACKENDS = ("tl", "nnsight")


@pytest.fixture(scope="session")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from interp_af.zoo import build_zoo

    return build_zoo(tmp_path_factory.mktemp("zoo"))


@lru_cache(maxsize=None)
def _handle(path: Path, backend: str):
    from interp_af.models.handle import load_model

    return load_model(path, backend=backend)


@pytest.fixture(scope="session")
def zoo_handle(zoo):
    """``zoo_handle(name, backend)``: the loaded handle (cached for the session)."""
    return lambda name, backend: _handle(zoo[name], backend)


@lru_cache(maxsize=None)
def queries(n: int = 8):
    from interp_af.setting.queries import load_queries

    return tuple(load_queries(limit=n))
