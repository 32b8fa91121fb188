"""Devices are checked before anything loads: a GPU or MPS that is not there is one line naming what exists."""

from __future__ import annotations

import pytest
import torch

from interp_af.errors import InterpAFError
from interp_af.models import devices
from interp_af.models.devices import available_devices, check_device


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_cpu_and_meta_always_pass(no_gpu):
    assert check_device("cpu") == torch.device("cpu") and check_device("meta").type == "meta"
    assert available_devices() == ["cpu"]


@pytest.mark.parametrize("dev,needle", [("cuda", "no usable CUDA GPU"), ("cuda:3", "no usable CUDA GPU"),
                                        ("mps", "MPS backend is not available"), ("gpu", "not a device name"),
                                        ("cuda:x", "not a device name"), ("xla", "not available")])
def test_missing_devices_are_one_line_naming_what_exists(no_gpu, dev, needle):
    with pytest.raises(InterpAFError) as err:
        check_device(dev)
    msg = str(err.value)
    assert "\n" not in msg and needle in msg and repr(dev) in msg and "cpu" in msg


def test_gpu_index_is_checked_against_the_count(two_gpus):
    assert check_device("cuda").type == "cuda" and check_device("cuda:1").index == 1
    with pytest.raises(InterpAFError) as err:
        check_device("cuda:3")
    msg = str(err.value)
    assert "has 2 GPU(s)" in msg and "cuda:0, cuda:1" in msg


def test_load_model_checks_the_device_before_loading(no_gpu, monkeypatch, tmp_path):
    import interp_af.models.tl as tl

    def must_not_load(*a, **k):
        raise AssertionError("the model was loaded before the device was checked")

    monkeypatch.setattr(tl, "load_tl", must_not_load)
    from interp_af.models.handle import load_model

    for dev in ("cuda", "cuda:3", "mps"):
        with pytest.raises(InterpAFError, match="use one of: cpu"):
            load_model(tmp_path / "no-model-needed", device=dev)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (checked on a GPU machine)")
def test_real_gpu_devices():
    n = torch.cuda.device_count()
    assert check_device("cuda").type == "cuda" and check_device(f"cuda:{n - 1}").index == n - 1
    with pytest.raises(InterpAFError, match=f"has {n} GPU"):
        check_device(f"cuda:{n}")
    assert f"cuda:{n - 1}" in devices.available_devices()


def test_probe_solver_device_is_checked(no_gpu):
    from interp_af.analysis.probes import ProbeConfig

    assert ProbeConfig(device="torch-cpu").device == "torch-cpu"
    with pytest.raises(InterpAFError, match="no usable CUDA GPU"):
        ProbeConfig(device="cuda")
