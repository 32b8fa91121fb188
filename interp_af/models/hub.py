"""Where a model comes from: a local Hugging Face directory or a Hub id, and how it is loaded.

Every backend starts from the same plain ``transformers`` model, loaded here: a local directory is used as
is; a Hub id is looked up in the local Hugging Face cache first (``local_files_only``) and downloaded only
when the Hub is reachable. Without network ``huggingface_hub`` retries for about 23 seconds before failing;
we check reachability once (a 2-second socket connect, or ``HF_HUB_OFFLINE``) and fail at once with one line
that says how to point at a local copy instead.

A ``.gguf`` file or the name of a packaged model (``smollm2-135m-instruct``, ``gemma-3-270m``) is converted
once into a cached folder (:mod:`interp_af.models.convert`, :mod:`interp_af.models.packaged`) and then loads
like any other folder. A folder that cannot load (a config but no weights, a cut-short safetensors file) and a
path that is a file are reported in one line before transformers sees them.

A PEFT (LoRA) adapter is applied with peft and merged into the weights, so that both backends see one plain
model with the module names of the base architecture (TransformerLens converts merged weights; nnsight
traces the same modules). An adapter that does not fit the base model is reported in one line.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

import torch

from interp_af.errors import InterpAFError

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float64": torch.float64,
}


def parse_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise InterpAFError(f"dtype {dtype!r} is unknown; use one of {', '.join(sorted(DTYPES))}")
    return DTYPES[dtype]


def _looks_like_path(name: str) -> bool:
    # a Hub id is "name" or "org/name"; anything else with slashes, or starting like a path, is a path
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def _hub_reachable(timeout: float = 2.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false") or os.environ.get("TRANSFORMERS_OFFLINE", "0") \
            not in ("0", "", "false"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


_NAMED: dict[str, Callable[[], str | Path]] = {}


def register_model_name(name: str, locate: Callable[[], str | Path]) -> None:
    """Make ``name`` resolve to ``locate()`` (a folder or Hub id); targets register their names here, so
    ``load_model(name)`` works for every registered target."""
    _NAMED[name] = locate


def resolve_model(model: str | Path) -> Path:
    """A local directory with ``config.json`` and weights for ``model``, or a one-line InterpAFError.

    ``model``: a folder written by ``save_pretrained``, a Hub id (local HF cache first), a ``.gguf`` file
    (converted once into a cached folder keyed by its sha256), a packaged model's name
    (``smollm2-135m-instruct``, ``gemma-3-270m``: :mod:`interp_af.models.packaged`), or the name of a registered
    target (targets register their names with :func:`register_model_name`).
    """
    from interp_af.models.packaged import get_packaged, packaged_path

    name = str(model)
    path = Path(name).expanduser()
    if name not in _NAMED and not path.exists():
        from interp_af.plugins import load_plugins

        load_plugins()   # plugins register their targets' names (no-op after the first call)
    if name in _NAMED and not path.exists():
        located = str(_NAMED[name]())
        if located != name:
            return resolve_model(located)
    if get_packaged(name) is not None and not path.exists():
        return packaged_path(name)
    if name.lower().endswith(".gguf"):
        from interp_af.models.convert import convert_gguf_file

        return convert_gguf_file(path)
    if path.is_file():
        raise InterpAFError(f"model path {name} is a file, not a folder; pass the folder that save_pretrained wrote "
                            "(config.json + weights), a .gguf file, or a packaged model name")
    folder = resolve_repo(model, what="model", marker="config.json", flag="--model")
    check_weights(folder)
    return folder


_WEIGHT_GLOBS = ("*.safetensors", "pytorch_model*.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")


def check_weights(folder: Path) -> None:
    """One line when ``folder`` has a config but no weights, or a safetensors file that is cut short or corrupt
    (read from its header: cheap, no tensor data is touched)."""
    files = sorted({p for g in _WEIGHT_GLOBS for p in folder.glob(g)})
    if not files:
        raise InterpAFError(f"model folder {folder} has a config.json but no weights (*.safetensors or "
                            "pytorch_model*.bin); save the model there with model.save_pretrained(...)")
    for f in files:
        if f.suffix == ".safetensors":
            problem = _safetensors_problem(f)
            if problem:
                raise InterpAFError(f"weights file {f} is {problem}; copy or save it again "
                                    "(model.save_pretrained(...))")


def _safetensors_problem(path: Path) -> str:
    """"" when the file's header parses and its size matches the tensors it declares, else what is wrong."""
    import json
    import struct

    size = path.stat().st_size
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return f"truncated ({size} bytes)"
            (n,) = struct.unpack("<Q", head)
            if n > size - 8 or n > 100_000_000:
                return f"corrupt or truncated (header of {n} bytes in a file of {size})"
            header = json.loads(fh.read(n))
    except (OSError, ValueError, UnicodeDecodeError):
        return "corrupt (its header is not valid safetensors JSON)"
    ends = [int(v["data_offsets"][1]) for k, v in header.items()
            if k != "__metadata__" and isinstance(v, dict) and "data_offsets" in v]
    need = 8 + n + max(ends, default=0)
    if size < need:
        return f"truncated ({size} bytes; its header declares {need})"
    return ""


def resolve_repo(name: str | Path, *, what: str = "model", marker: str = "config.json", flag: str = "--model") -> Path:
    """Local folder for a path or Hub id (HF cache first; download only when the Hub is reachable)."""
    name = str(name)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / marker).exists():
            raise InterpAFError(f"{what} folder {name} has no {marker}; point {flag} at the folder that "
                                "save_pretrained wrote")
        return path
    if path.exists() or _looks_like_path(name):
        raise InterpAFError(f"{what} path {name} does not exist; pass an existing local folder or a Hub id")
    from huggingface_hub import snapshot_download

    try:  # the local HF cache first: no network involved
        return Path(snapshot_download(name, local_files_only=True))
    except Exception:  # noqa: BLE001 - any miss in the cache means "not on disk"
        pass
    if not _hub_reachable():
        raise InterpAFError(f"{what} {name!r} is not on disk and the Hugging Face Hub is unreachable; download it "
                            f"where there is network (huggingface-cli download {name} --local-dir DIR) and pass "
                            f"{flag} DIR")
    try:
        return Path(snapshot_download(name))
    except Exception as err:  # noqa: BLE001
        raise InterpAFError(f"{what} {name!r} could not be downloaded ({type(err).__name__}); check the id, or "
                            "pass a local folder") from None


def load_tokenizer(path: Path, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tok.pad_token_id is None:  # only used for left padding, which the attention mask hides
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"     # batches are left-padded everywhere (the decision sits in the last column)
    return tok


def load_hf_model(path: Path, *, dtype: torch.dtype, device: str = "cpu", device_map: str | None = None,
                  trust_remote_code: bool = False, adapter: str | Path | None = None) -> Any:
    """Plain ``AutoModelForCausalLM`` in eval mode (adapter merged in when given)."""
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": trust_remote_code}
    if device_map is not None:
        kwargs["device_map"] = device_map
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except ValueError as err:
        if "trust_remote_code" in str(err) and not trust_remote_code:
            raise InterpAFError(f"model {path} needs custom code; pass trust_remote_code=True (--trust-remote-code) "
                                "if you trust its author") from None
        raise
    if device_map is None:
        model = model.to(device)
    if adapter is not None:
        model = apply_adapter(model, adapter)
    model.eval()
    return model


def apply_adapter(model: Any, adapter: str | Path) -> Any:
    """Load a PEFT adapter onto ``model`` and merge it; one-line error when it does not fit."""
    from peft import PeftConfig, PeftModel

    apath = resolve_repo(adapter, what="adapter", marker="adapter_config.json", flag="--adapter")
    base_name = PeftConfig.from_pretrained(apath).base_model_name_or_path or "unknown"
    try:
        peft_model = PeftModel.from_pretrained(model, apath)
    except (RuntimeError, ValueError, KeyError) as err:
        first = str(err).strip().splitlines()[-1][:160] if str(err).strip() else type(err).__name__
        raise InterpAFError(f"adapter {adapter} does not fit this model (it was trained on {base_name}: {first}); "
                            "pass an adapter trained on the same base model") from None
    return peft_model.merge_and_unload()


class loading_bars:
    """``with loading_bars(show):`` around a model load: when ``show`` is False, transformers' and
    huggingface_hub's own progress bars ("Loading weights", downloads) stay off inside the block and are
    restored after it (``interp-af run --quiet`` means no bar at all, not only ours)."""

    def __init__(self, show: bool):
        self.show = show
        self._restore: list[Callable[[], None]] = []

    def __enter__(self) -> "loading_bars":
        if self.show:
            return self
        from transformers.utils import logging as hf_logging

        if hf_logging.is_progress_bar_enabled():
            hf_logging.disable_progress_bar()
            self._restore.append(hf_logging.enable_progress_bar)
        try:
            from huggingface_hub.utils import (are_progress_bars_disabled, disable_progress_bars,
                                               enable_progress_bars)
        except ImportError:   # an older huggingface_hub: transformers' switch is enough
            return self
        if not are_progress_bars_disabled():
            disable_progress_bars()
            self._restore.append(enable_progress_bars)
        return self

    def __exit__(self, *exc: Any) -> None:
        for undo in self._restore:
            undo()
        self._restore.clear()
