"""Which device a model may be put on: checked before anything loads, with the devices that exist named.

``torch`` only notices a missing device when the first tensor moves there, that is after the weights of a 70B
model were read from disk, and then with a multi-line traceback ("Torch not compiled with CUDA enabled",
"invalid device ordinal"). :func:`check_device` answers at once, in one line: ``cuda:3`` on a two-GPU machine
names ``cuda:0, cuda:1``; ``mps`` on Linux names what there is.
"""

from __future__ import annotations

import torch

from interp_af.errors import InterpAFError

__all__ = ["check_device", "available_devices"]


def available_devices() -> list[str]:
    """``cpu`` plus every accelerator torch can use here (``cuda:0`` ... , ``mps``, ``xpu:0`` ...)."""
    out = ["cpu"]
    if torch.cuda.is_available():
        out += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        out += [f"xpu:{i}" for i in range(xpu.device_count())]
    return out


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a :class:`torch.device` if this machine has it; else one line naming what exists.

    ``cuda`` means the current CUDA device (any GPU will do); ``cuda:N`` needs N < the number of GPUs.
    ``meta`` is accepted (shape-only models, e.g. a remote NDIF trace)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise InterpAFError(f"device {device!r} is not a device name; use cpu, cuda, cuda:N or mps "
                            f"(this machine has: {', '.join(available_devices())})") from None
    kind = dev.type
    if kind in ("cpu", "meta"):
        return dev
    have = available_devices()
    if kind == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise InterpAFError(f"device {str(device)!r}: this machine has no usable CUDA GPU (torch "
                                f"{torch.__version__}, CUDA build: {torch.version.cuda or 'no'}); use one of: "
                                f"{', '.join(have)}")
        if dev.index is not None and dev.index >= n:
            raise InterpAFError(f"device {str(device)!r} does not exist: this machine has {n} GPU(s); use one of: "
                                f"{', '.join(have)}")
        return dev
    if kind == "mps":
        if "mps" not in have:
            raise InterpAFError(f"device {str(device)!r}: Apple's MPS backend is not available here; use one of: "
                                f"{', '.join(have)}")
        return dev
    backend = getattr(torch, kind, None)
    is_available = getattr(backend, "is_available", None)
    if callable(is_available) and is_available():
        count = getattr(backend, "device_count", lambda: 1)()
        if dev.index is None or dev.index < count:
            return dev
    raise InterpAFError(f"device {str(device)!r} is not available on this machine; use one of: {', '.join(have)}")
