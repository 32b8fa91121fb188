"""Loading options and the one-line errors of bad model inputs."""

from __future__ import annotations

import time

import pytest
import torch

from interp_af.errors import InterpAFError
from interp_af.models import hub
from interp_af.models.handle import ModelHandle, load_model
from interp_af.models.sites import SITES
from tests.models.conftest import random_prompts


def test_missing_path_and_offline_hub_id_fail_fast(tmp_path):
    with pytest.raises(InterpAFError, match="does not exist"):
        load_model(tmp_path / "no-such-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InterpAFError, match="config.json"):
        load_model(tmp_path / "empty")
    t0 = time.perf_counter()
    with pytest.raises(InterpAFError, match="not on disk.*--model DIR") as err:
        load_model("meta-llama/Llama-3.1-405B-Instruct", backend="nnsight")
    assert time.perf_counter() - t0 < 5      # no 23-second retry loop
    assert "\n" not in str(err.value)


def test_hub_unreachable_without_offline_flag(monkeypatch):
    """With the offline variables unset, an unreachable Hub is detected by one short connect."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")   # discard port: connection refused at once
    assert hub._hub_reachable(timeout=1.0) is False


def test_bad_backend_dtype_and_remote(tiny_models):
    with pytest.raises(InterpAFError, match="backend 'jax'"):
        load_model(tiny_models["llama"], backend="jax")
    with pytest.raises(InterpAFError, match="dtype 'float8'"):
        load_model(tiny_models["llama"], dtype="float8")
    with pytest.raises(InterpAFError, match="remote=True needs backend='nnsight'"):
        load_model(tiny_models["llama"], backend="tl", remote=True)   # the default, auto, is nnsight on NDIF


@pytest.mark.parametrize("backend", ["tl", "nnsight"])
def test_handle_fields_and_bad_sites(backend, handles):
    h = handles("gemma2", backend)
    assert isinstance(h, ModelHandle)
    assert (h.n_layers, h.d_model, h.n_heads, h.d_head) == (2, 64, 4, 16)
    assert h.sites() == SITES and h.backend == backend
    assert h.embedding_matrix().shape == (len(h.tokenizer), 64)
    batch = h.collate(random_prompts())
    from interp_af.models.sites import SiteKey

    with pytest.raises(InterpAFError, match="valid sites: resid_pre, resid_post"):
        h.forward(batch, capture=[SiteKey("hook_z", 0)])
    with pytest.raises(InterpAFError, match="valid layers: 0..1"):
        h.forward(batch, capture=[SiteKey("resid_post", 2)])
    with pytest.raises(InterpAFError, match="past stop_at_layer"):
        h.forward(batch, capture=[SiteKey("resid_post", 1)], stop_at_layer=1)
    with pytest.raises(InterpAFError, match="stop_at_layer=3"):
        h.forward(batch, stop_at_layer=3)
    with pytest.raises(InterpAFError, match="capture_positions"):
        h.forward(batch, capture=[SiteKey("resid_post", 0)], capture_positions=torch.zeros(2, 1, dtype=torch.long))


@pytest.mark.parametrize("device_map", ["cpu", "auto"])
def test_device_map_loads_on_cpu(device_map, tiny_models):
    for backend in ("tl", "nnsight"):
        h = load_model(tiny_models["qwen2"], backend=backend, device_map=device_map)
        out = h.forward(h.collate(random_prompts()))
        assert out.logits.shape[0] == 3 and h.device.type == "cpu"


def test_dtype_bfloat16(tiny_models, handles):
    h = load_model(tiny_models["llama"], backend="nnsight", dtype="bfloat16")
    assert h.dtype == torch.bfloat16
    batch = h.collate(random_prompts())
    got = h.forward(batch).logits.float()
    want = handles("llama", "nnsight").forward(batch).logits
    assert (got - want).abs().max() < 0.1


def test_tl_path_substring_trap_is_survived(tiny_models, tmp_path):
    """A folder named like an official Llama model: TL's name-based branch must not be taken."""
    import shutil

    odd = tmp_path / "meta-llama-gemma-2-copy"
    shutil.copytree(tiny_models["llama"], odd)
    h = load_model(odd, backend="tl", tl_route="hooked")
    assert h.route == "hooked"
    assert h.forward(h.collate(random_prompts())).logits.shape[0] == 3
