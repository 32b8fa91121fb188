"""Byte-level safetensors I/O: deterministic streaming writes, header reads, memory-mapped tensor views.

A safetensors file is an 8-byte little-endian header length ``n``, ``n`` bytes of JSON
(``{name: {"dtype": "F32", "shape": [...], "data_offsets": [start, end]}, "__metadata__": {str: str}}``) and
then the raw, C-ordered, little-endian tensor bytes, offsets relative to the end of the header.

We write the format ourselves (it is 20 lines) instead of calling ``safetensors.torch.save_file`` for two
reasons: (1) the consolidated arrays are written *streaming*, shard by shard, without ever holding the whole
array in memory, which the library cannot do; (2) bit-identical output across processes: we control the exact
header bytes (sorted keys), so a resumed capture produces the same files as an uninterrupted one. The files are
plain safetensors: ``safetensors.safe_open`` reads them (a test checks this).

Reads map the file with ``numpy.memmap`` and wrap it with ``torch.from_numpy``: the tensor is backed by the page
cache, so opening a 50 GB capture costs no RAM and touching a slice reads only those pages.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import torch

from interp_af import atomic, checksums

# safetensors dtype code <-> torch dtype. bf16 has no numpy dtype: it is mapped as uint16 and re-viewed.
DTYPES: dict[torch.dtype, str] = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}
TORCH_OF: dict[str, torch.dtype] = {v: k for k, v in DTYPES.items()}
NUMPY_OF: dict[str, type] = {
    "F32": np.float32, "F16": np.float16, "BF16": np.uint16, "F64": np.float64, "I64": np.int64, "I32": np.int32,
    "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_,
}
ITEMSIZE: dict[str, int] = {k: np.dtype(v).itemsize for k, v in NUMPY_OF.items()}


class Spec:
    """What one tensor of a file to be written looks like (dtype code + shape), before its bytes exist."""

    def __init__(self, dtype: str, shape: tuple[int, ...]):
        self.dtype, self.shape = dtype, tuple(int(s) for s in shape)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * ITEMSIZE[self.dtype]


def header_bytes(specs: Mapping[str, Spec], metadata: Mapping[str, str] | None = None) -> bytes:
    """The exact header (length prefix + JSON padded with spaces to 8 bytes) for tensors written in key order."""
    head: dict[str, object] = {}
    offset = 0
    for name in specs:  # data is laid out in the caller's key order
        s = specs[name]
        head[name] = {"dtype": s.dtype, "shape": list(s.shape), "data_offsets": [offset, offset + s.nbytes]}
        offset += s.nbytes
    if metadata:
        head["__metadata__"] = {str(k): str(v) for k, v in sorted(metadata.items())}
    raw = json.dumps(head, separators=(",", ":"), sort_keys=True).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw


def tensor_bytes(t: torch.Tensor) -> memoryview:
    """Raw little-endian bytes of a CPU tensor (bf16 through an int16 view, since numpy has no bf16)."""
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return memoryview(t.numpy()).cast("B")


def write_atomic(path: Path, chunks: Iterable[bytes | memoryview]) -> str:
    """Write ``chunks`` to ``path`` atomically (tmp file + fsync + rename + directory fsync); return sha256.

    The one atomic writer of the package (:func:`interp_af.atomic.write_chunks`): the temporary file is removed
    on any failure, Ctrl-C and a full disk included, and an ``OSError`` becomes a one-line error naming ``path``."""
    return atomic.write_chunks(path, chunks)


fsync_dir = atomic.fsync_dir


def save(path: Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None) -> str:
    """Write small in-memory tensors as one safetensors file, atomically; return its sha256."""
    specs = {k: Spec(DTYPES[v.dtype], tuple(v.shape)) for k, v in tensors.items()}
    return write_atomic(path, [header_bytes(specs, metadata), *(tensor_bytes(tensors[k]) for k in specs)])


def read_header(path: Path) -> tuple[dict, int]:
    """(header dict, byte offset where the data starts). Raises ValueError on a malformed file."""
    with open(path, "rb") as f:
        pre = f.read(8)
        if len(pre) != 8:
            raise ValueError("file shorter than the 8-byte header length")
        (n,) = struct.unpack("<Q", pre)
        if n > 100 << 20:
            raise ValueError(f"header length {n} is implausible")
        raw = f.read(n)
        if len(raw) != n:
            raise ValueError("header truncated")
    return json.loads(raw), 8 + n


def memmap(path: Path, name: str) -> torch.Tensor:
    """A torch tensor backed by a read-only-on-disk memory map of tensor ``name`` in ``path`` (no copy)."""
    head, start = read_header(path)
    try:  # a damaged header must be a ValueError the caller can name, not a KeyError deep inside numpy
        info = head[name]
        shape = tuple(int(s) for s in info["shape"])
        lo, hi = (int(x) for x in info["data_offsets"])
        code = str(info["dtype"])
        itemsize = ITEMSIZE[code]
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"malformed safetensors header for tensor {name!r} ({type(err).__name__}: {err})") from None
    if min(shape, default=0) < 0 or hi - lo != int(np.prod(shape, dtype=np.int64)) * itemsize or lo < 0:
        raise ValueError(f"tensor {name!r}: header shape {list(shape)} does not match its byte range [{lo}, {hi})")
    if os.path.getsize(path) < start + hi:
        raise ValueError(f"tensor {name!r} extends past the end of the file (truncated)")
    if 0 in shape:
        return torch.empty(shape, dtype=TORCH_OF[code])
    # mode "c" (copy-on-write): writable for torch.from_numpy, but writes never reach the file
    arr = np.memmap(path, dtype=NUMPY_OF[code], mode="c", offset=start + lo, shape=shape)
    t = torch.from_numpy(arr)
    return t.view(torch.bfloat16) if code == "BF16" else t


def sha256_file(path: Path) -> str:
    """Streaming sha256 of a file (constant memory)."""
    return checksums.sha256_file(path)
