"""The capture store: a folder of plain safetensors files plus a JSON manifest, read memory-mapped.

Layout of a finished capture (full description in ``FORMAT.md`` beside this module)::

    manifest.json                      what was captured, from what, and the sha256 of every file below
    acts/<site>@<position>.safetensors one tensor "acts": [rows, n_layers_captured, d_model]
                                       ([rows, n_layers_captured, n_heads, d_head] for head_out)
    meta.jsonl                         one JSON object per row, in row order (labels, token ids, positions, metric)
    cue_embeddings.safetensors         one tensor per arm: mean input-embedding row of its cue tokens [d_model]
    .interp_af.json                    ownership marker (:mod:`interp_af.owned`): the toolkit wrote this folder
    .verified.json                     cache of files whose sha256 was checked (:mod:`interp_af.checksums`)

While a capture is being written, ``manifest.json`` has ``"status": "writing"`` and the rows live in
``shards/shard-<k>.safetensors`` (the resumable unit); finishing merges them into the per-array files above.

Why one file per (site, position) rather than the shards themselves: the contract hands out one tensor
``[rows, layers, d]``, and a tensor can only be memory-mapped from one contiguous region of one file. Merging
once at the end (streamed, shard by shard, constant memory) lets :meth:`Capture.acts` return a true
``numpy.memmap``-backed torch tensor: opening costs no RAM, and slicing ``acts[:, layer]`` reads only what it
touches. Peak RAM is therefore independent of the number of rows, both when writing and when reading.

**Every read is verified.** Each file's size and sha256 (recorded in the manifest) are checked before its first
use: all of them at :func:`open_capture` (``verify=True``, the default), or each one at its first read
(``verify=False`` only defers the cost). A file that passed is not hashed again while its stat is unchanged
(:mod:`interp_af.checksums`), so reopening a capture costs a few ``stat`` calls. A corrupted or damaged file is
named in one line; nothing is ever computed from it.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from interp_af import checksums
from interp_af.errors import InterpAFError

from . import sfio

FORMAT = "interp_af.acts"
VERSION = 1
MANIFEST = "manifest.json"
RECORD = ".verified.json"
_REDO = "rerun the capture with --overwrite"


def array_key(site: str, position: str) -> str:
    """Name of a (site, position) array: the tensor name inside shards and the file stem under ``acts/``."""
    return f"{site}@{position}"


def read_manifest(path: Path) -> dict:
    f = Path(path) / MANIFEST
    try:
        m = json.loads(f.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InterpAFError(f"{path} holds no capture ({MANIFEST} missing); run `interp-af capture --out {path}`") from None
    except ValueError:  # JSONDecodeError and UnicodeDecodeError (binary garbage) alike
        raise InterpAFError(f"{f} is not valid JSON (corrupted); rerun the capture with --overwrite") from None
    except OSError as err:
        raise InterpAFError(f"{f} cannot be read ({err.strerror}); check its permissions") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise InterpAFError(f"{f} is not an interp_af capture manifest; point at a folder written by `interp-af capture`")
    if not isinstance(m.get("version", 0), int) or m.get("version", 0) > VERSION:
        raise InterpAFError(f"{f} has format version {m.get('version')}; upgrade interp_af to read it")
    return m


def write_manifest(path: Path, manifest: dict) -> None:
    sfio.write_atomic(Path(path) / MANIFEST, [json.dumps(manifest, indent=1, sort_keys=True).encode()])


def verify_file(root: Path, entry: dict, what: str, *, full: bool = True,
                record: checksums.Record | None = None, rehash: bool = False) -> None:
    """Check one file listed in the manifest: present, right size and (``full``) right sha256, the last cached by
    stat (``rehash`` ignores the cache). One-line error naming it."""
    f = Path(root) / entry["file"]
    hint = _REDO if what != "shard" else "delete that file and rerun to recompute it"
    if not full:
        if not f.exists():
            raise InterpAFError(f"capture {what} {f} is missing; {hint}")
        size = f.stat().st_size
        if size != entry["bytes"]:
            raise InterpAFError(f"capture {what} {f} is truncated or corrupted ({size} bytes, expected "
                                f"{entry['bytes']}); {hint}")
        return
    checksums.verify_file(f, entry["sha256"], size=entry["bytes"], what=f"capture {what}", hint=hint,
                          record=record, full=rehash)


class Capture:
    """A finished capture on disk. Arrays come memory-mapped; nothing is read until it is touched."""

    def __init__(self, path: str | Path, manifest: dict):
        self.path = Path(path)
        self.manifest = manifest
        cfg = manifest["config"]
        self.sites: tuple[str, ...] = tuple(cfg["sites"])
        self.layers: tuple[int, ...] = tuple(cfg["layers"])
        self.positions: tuple[str, ...] = tuple(cfg["positions"])
        self.n_rows: int = int(manifest["prompts"]["n"])
        self._record = checksums.Record(self.path / RECORD)
        self._ok: set[str] = set()   # files verified by this object (each is hashed at most once per process)

    def _checked(self, entry: dict, what: str) -> Path:
        """The path of manifest ``entry``'s file, after checking its size and sha256 (once)."""
        if entry["file"] not in self._ok:
            verify_file(self.path, entry, what, record=self._record)
            self._record.save()
            self._ok.add(entry["file"])
        return self.path / entry["file"]

    def __repr__(self) -> str:
        m = self.manifest["model"]
        return (f"Capture({str(self.path)!r}, model={m['name']!r}, rows={self.n_rows}, sites={self.sites}, "
                f"layers={len(self.layers)}, positions={self.positions})")

    @property
    def model(self) -> dict:
        """The model identity (name, revision, adapter, backend, dtype, shape, weights fingerprint)."""
        return self.manifest["model"]

    @property
    def identity(self) -> dict:
        """What probe artifacts record to refuse a capture of another model / prompt set / config."""
        return {"model": self.manifest["model"], "prompts": self.manifest["prompts"], "config": self.manifest["config"]}

    def layer_index(self, layer: int) -> int:
        """Index along the layer axis of :meth:`acts` that holds model layer ``layer``."""
        try:
            return self.layers.index(layer)
        except ValueError:
            raise InterpAFError(f"layer {layer} was not captured; captured layers: {list(self.layers)}") from None

    def acts(self, site: str, position: str) -> Float[Tensor, "rows layers ..."]:
        """``[rows, n_layers_captured, d_model]`` (``[..., n_heads, d_head]`` for head_out), memory-mapped.

        Rows where ``position`` does not exist in the prompt (``at.<position>`` == -1 in :meth:`meta`) are NaN.
        Axis 1 follows :attr:`layers`. Call ``.float()`` or ``.clone()`` on a slice to bring it into RAM.
        """
        key = array_key(site, position)
        entry = self.manifest["arrays"].get(key)
        if entry is None:
            raise InterpAFError(
                f"({site!r}, {position!r}) was not captured in {self.path}; sites: {', '.join(self.sites)}; "
                f"positions: {', '.join(self.positions)}"
            )
        f = self._checked(entry, "array")
        try:
            t = sfio.memmap(f, "acts")
        except (ValueError, OSError) as err:
            raise InterpAFError(f"capture array {f} is unreadable ({err}); {_REDO}") from None
        if list(t.shape) != list(entry["shape"]):
            raise InterpAFError(f"capture array {f} has shape {list(t.shape)} but the manifest says {entry['shape']}; "
                                f"{_REDO}")
        return t

    def logit_diff(self) -> Float[Tensor, " rows"]:
        """The compliance metric (logit(accept) - logit(reject)) of each row; NaN when not measured."""
        return torch.tensor(self.meta()["logit_diff"].to_numpy(dtype="float64"), dtype=torch.float32)

    @cached_property
    def _records(self) -> list[dict[str, Any]]:
        f = self._checked(self.manifest["meta"], "metadata file")
        out = []
        with open(f, encoding="utf-8") as fh:
            try:
                for n, line in enumerate(fh, start=1):
                    if line.strip():
                        out.append(json.loads(line))
            except (ValueError, UnicodeDecodeError) as err:
                raise InterpAFError(f"capture metadata file {f}, line {n}, is not valid JSON ({err}); "
                                    f"{_REDO}") from None
        if len(out) != self.n_rows:
            raise InterpAFError(f"capture metadata file {f} has {len(out)} rows, the manifest says {self.n_rows}; "
                                f"{_REDO}")
        return out

    def records(self) -> list[dict[str, Any]]:
        """The raw per-row records of ``meta.jsonl`` (nested: ``meta``, ``positions``, ``captured``, ``input_ids``)."""
        return list(self._records)

    def meta(self):
        """One row per prompt, in row order: row, query_id, arm, variant, harmful, every RenderedPrompt.meta key,
        logit_diff, complied, n_tokens, input_ids (list), ``pos.<name>`` (named positions of the prompt) and
        ``at.<position>`` (the token index each captured position resolved to; -1 = absent, stored as NaN)."""
        import pandas as pd

        flat = []
        for r in self._records:
            row = {"row": r["row"], "query_id": r["query_id"], "arm": r["arm"], "variant": r["variant"],
                   "harmful": r["meta"].get("harmful")}
            row.update({k: v for k, v in r["meta"].items() if k not in row})
            row.update(logit_diff=float("nan") if r["logit_diff"] is None else r["logit_diff"],
                       complied=r["complied"], n_tokens=len(r["input_ids"]), input_ids=r["input_ids"])
            row.update({f"pos.{k}": v for k, v in r["positions"].items()})
            row.update({f"at.{k}": v for k, v in r["captured"].items()})
            flat.append(row)
        return pd.DataFrame(flat)

    def cue_embeddings(self) -> dict[str, Float[Tensor, " d_model"]]:
        """arm -> mean input-embedding row (W_E) of that arm's cue tokens (arms without a cue are absent)."""
        entry = self.manifest.get("cue_embeddings")
        if not entry:
            return {}
        f = self._checked(entry, "cue-embedding file")
        try:
            head, _ = sfio.read_header(f)
            return {k: sfio.memmap(f, k).clone() for k in sorted(head) if k != "__metadata__"}
        except (ValueError, OSError) as err:
            raise InterpAFError(f"capture cue-embedding file {f} is unreadable ({err}); {_REDO}") from None

    def _entries(self) -> list[tuple[dict, str]]:
        out = [(self.manifest["arrays"][k], "array") for k in sorted(self.manifest["arrays"])]
        out.append((self.manifest["meta"], "metadata file"))
        if self.manifest.get("cue_embeddings"):
            out.append((self.manifest["cue_embeddings"], "cue-embedding file"))
        return out

    def verify(self, *, full: bool = False) -> None:
        """Check the size and sha256 of every file (cached by stat; ``full`` re-hashes everything); raises a
        one-line error naming the first bad one."""
        try:
            for entry, what in self._entries():
                if full or entry["file"] not in self._ok:
                    verify_file(self.path, entry, what, record=self._record, rehash=full)
                    self._ok.add(entry["file"])
        finally:
            self._record.save()


def open_capture(path: str | Path, *, verify: bool = True) -> Capture:
    """Open a finished capture. ``verify`` checks every file's sha256 now (streamed, seconds per GB the first
    time, then cached by stat); ``verify=False`` checks sizes now and each file's sha256 at its first read, so
    nothing unverified is ever used either way."""
    path = Path(path)
    if not path.is_dir():
        raise InterpAFError(f"capture folder {path} does not exist; run `interp-af capture --out {path}` first")
    m = read_manifest(path)
    if m.get("status") != "complete":
        done, total = len(m.get("shards", {})), m.get("layout", {}).get("n_shards", "?")
        raise InterpAFError(
            f"capture {path} is incomplete ({done} of {total} shards written); rerun the same capture to resume it"
        )
    for part in ("arrays", "meta", "config", "prompts"):
        if not isinstance(m.get(part), dict):
            raise InterpAFError(f"{path / MANIFEST} lacks its {part!r} section (damaged); {_REDO}")
    cap = Capture(path, m)
    if verify:
        cap.verify()
    else:
        for entry, what in cap._entries():
            verify_file(path, entry, what, full=False)
    return cap
