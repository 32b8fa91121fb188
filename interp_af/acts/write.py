"""The capture writer: batched, streaming, resumable.

``capture(handle, prompts, out_dir, ...)`` runs every prompt through a model handle and keeps only the requested
sites, layers and positions. How it stays fast and small:

- **Only what is asked leaves the forward pass**: the handle captures at ``capture_positions`` (``[B, P]``
  prompt coordinates), so a 4-position capture never materialises ``[B, T, d]`` per layer; without the metric
  the pass stops after the last captured layer (no unembedding).
- **The metric rides along**: the compliance metric (logit(accept) - logit(reject) at the first divergent
  answer token, :mod:`interp_af.models.metric`) needs the prompt plus the shared prefix of the two completions;
  the model reads ``prompt + shared`` once, activations come from the prompt positions (causal attention: the
  appended tokens cannot change them) and logits from the last position.
- **Streaming shards**: rows are grouped into shards of ``shard_rows`` prompts (sized so that one shard's
  buffer is <= 64 MiB). Inside a shard, prompts are sorted by length before batching (less padding); only one
  shard is ever in memory. Peak RAM does not grow with the number of prompts.
- **Resumable, bit-identical**: each finished shard is written atomically (tmp + fsync + rename) and then
  recorded, with its sha256, in ``manifest.json`` (also atomic). A rerun with the same model, prompts and config
  verifies the recorded shards and computes only the missing ones; batches inside a shard are a deterministic
  function of the shard, so the result is bit-identical to an uninterrupted run (same device and batch size).
  A cache of another model / prompt set / config is refused with one line (``overwrite=True`` replaces it).
- **Finish**: shards are merged (streamed) into one file per (site, position), ``meta.jsonl`` and the
  cue embeddings are written, the manifest flips to ``complete``, and the shards are deleted.
- **Owned folder**: the output folder is claimed (:func:`interp_af.owned.claim_dir`): created, or accepted when
  empty or written by interp_af; a folder holding someone else's files is refused (``allow_foreign=True``
  writes beside them and never deletes them). Every removal (``overwrite``, the shards at the end) goes
  through :func:`interp_af.owned.remove_owned`. A killed writer's temporary files are cleared when the
  capture is resumed, and a finished capture never holds one.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch

from interp_af.models.wrap import as_handle
from interp_af import atomic, checksums, owned
from interp_af.checks import positive_int
from interp_af.errors import InterpAFError
from interp_af.models.batch import collate, pad_id_of
from interp_af.models.sites import SITES, SiteKey

from . import identity as ident
from . import sfio
from .positions import DEFAULT_POSITIONS, check_known, expand, resolve
from .store import (FORMAT, MANIFEST, RECORD, VERSION, Capture, array_key, open_capture, read_manifest, verify_file,
                    write_manifest)

SHARD_BYTES = 64 << 20  # target size of one shard's activation buffer
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_OWN = (MANIFEST, "shards", "acts", "meta.jsonl", "cue_embeddings.safetensors", RECORD)
_SIDE = (".lock", owned.MARKER)   # the writer's own bookkeeping, never results
_FOREIGN_HINT = ("choose a new or empty --out, or allow writing beside those files (allow_foreign=True; they are "
                 "never deleted)")


def _malloc_trim() -> Callable[[], None]:
    """glibc's ``malloc_trim(0)``, or a no-op elsewhere.

    Why: batches of different widths free and allocate activation buffers of different sizes; glibc raises its
    mmap threshold after the first large free, so later buffers come from the heap, fragment it, and the
    process's resident memory creeps up with the number of batches although the live memory does not. Trimming
    once per batch hands the free pages back (milliseconds next to a forward pass), keeping peak RSS flat."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    return lambda: trim(0) and None


_TRIM = _malloc_trim()


def _tail_shape(handle: Any, site: str) -> tuple[int, ...]:
    return (int(handle.n_heads), int(handle.d_head)) if site == "head_out" else (int(handle.d_model),)


def default_shard_rows(row_bytes: int) -> int:
    """Rows per shard: as many as fit in SHARD_BYTES, a multiple of 16, between 16 and 4096."""
    return max(16, min(4096, (SHARD_BYTES // max(1, row_bytes)) // 16 * 16))


def _claim(out: Path, allow_foreign: bool) -> None:
    """Create or accept the capture folder (see :mod:`interp_af.owned`); a capture written before ownership
    markers existed is recognised by its manifest and adopted."""
    if out.is_dir() and owned.owner(out) is None and (out / MANIFEST).exists():
        read_manifest(out)  # refuses a manifest.json that is not a capture's
        owned.adopt_dir(out, what="capture")
        for sub in ("acts", "shards"):
            if (out / sub).is_dir():
                owned.adopt_dir(out / sub, what="capture")
    elif out.is_dir() and owned.owner(out) is None and os.listdir(out) == [".lock"]:
        owned.adopt_dir(out, what="capture")  # a capture that died before its first manifest: only its lock
    owned.claim_dir(out, what="capture", allow_foreign=allow_foreign, hint=_FOREIGN_HINT)
    if not (out / MANIFEST).exists():
        rec = owned.owner(out)
        foreign = set(rec.foreign) if rec else set()
        stray = [n for n in sorted(os.listdir(out))
                 if n not in (*_OWN, *_SIDE) and n not in foreign and not atomic.is_temp_name(n)]
        if stray:  # e.g. a run folder of interp_af: owned, but not by a capture
            raise InterpAFError(f"output folder {out} is not empty and holds no capture ({', '.join(stray[:3])}); "
                                f"choose a new or empty --out")


def _sweep(out: Path) -> None:
    """Remove killed writers' temporary files from the capture folder and its own sub-folders, never looking
    inside (or at) entries that were there before the capture claimed the folder."""
    rec = owned.owner(out)
    atomic.remove_stale_temps(out, recursive=False, keep=rec.foreign if rec else ())
    for sub in ("acts", "shards"):
        if owned.is_owned(out / sub):
            atomic.remove_stale_temps(out / sub, recursive=False)


def _clear(out: Path) -> None:
    """Remove a previous capture's files (only ours: anything else in the folder is left alone)."""
    for name in _OWN:
        owned.remove_owned(out / name)
    _sweep(out)


def _prepare_dir(out: Path, want: dict, overwrite: bool) -> dict | None:
    """Return the existing manifest to resume from (None = start fresh). Refuses mismatching caches."""
    if not (out / MANIFEST).exists():
        return None
    if overwrite:
        _clear(out)
        return None
    old = read_manifest(out)
    for part, what in (("model", "model"), ("prompts", "prompt set"), ("config", "capture config")):
        a, b = old.get(part, {}), want[part]
        if part == "model" and a.get("fingerprint") and b.get("fingerprint"):
            # same weights under another path or name are the same model: compare what defines the numbers
            a, b = ({k: d.get(k) for k in ident.MODEL_KEYS} for d in (a, b))
        differ = ident.diff_keys(a, b)
        if differ:
            raise InterpAFError(
                f"{out} holds a capture of a different {what} ({', '.join(differ)} differ); "
                "pass --overwrite (overwrite=True) to replace it, or choose another --out"
            )
    return old


def _embedding_rows(handle: Any, ids: list[int]) -> torch.Tensor | None:
    """Rows of the input embedding matrix W_E for token ``ids`` (None if the handle exposes no embedding)."""
    idx = torch.tensor(ids, dtype=torch.long)
    getters = (lambda h: h.embedding_matrix(), lambda h: ident.find_module(h).get_input_embeddings().weight,
               lambda h: ident.find_module(h).W_E)
    for getter in getters:
        try:
            w = getter(handle)
        except Exception:  # noqa: BLE001 - each getter fits one kind of handle; the next one is tried
            continue
        if isinstance(w, torch.Tensor) and w.device.type != "meta":
            return w.detach()[idx.to(w.device)].float().cpu()
    return None


def _software() -> dict[str, str]:
    """Versions that shape the numbers (recorded, not checked: a resumed run may legitimately upgrade)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("interp_af", "torch", "transformers", "transformer-lens", "nnsight", "safetensors"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = ""
    return out


def _cue_embeddings(handle: Any, records: Iterator[dict]) -> dict[str, torch.Tensor]:
    """Per arm: mean over prompts of the mean W_E row of the prompt's cue tokens (cue..cue_end)."""
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    cache: dict[tuple[int, ...], torch.Tensor | None] = {}
    for r in records:
        pos = r["positions"]
        if "cue" not in pos:
            continue
        lo, hi = pos["cue"], pos.get("cue_end", pos["cue"])
        toks = tuple(r["input_ids"][lo:hi + 1])
        if toks not in cache:
            rows = _embedding_rows(handle, list(toks))
            cache[toks] = None if rows is None else rows.mean(0)
        if cache[toks] is None:
            return {}
        sums[r["arm"]] = sums.get(r["arm"], 0) + cache[toks]
        counts[r["arm"]] = counts.get(r["arm"], 0) + 1
    return {arm: (sums[arm] / counts[arm]).contiguous() for arm in sorted(sums)}


class _Plan:
    """Everything fixed before the first forward pass: the identity, layout and per-row positions."""

    def __init__(self, handle: Any, prompts: Sequence[Any], sites: Sequence[str], layers: Sequence[int] | None,
                 positions: Sequence[str], metric: bool, dtype: str | None, shard_rows: int | None,
                 adapter: str | None, revision: str | None):
        if len(prompts) == 0:
            raise InterpAFError("no prompts to capture; check the query file / --limit")
        valid = tuple(handle.sites()) if hasattr(handle, "sites") else SITES
        sites = tuple(dict.fromkeys([sites] if isinstance(sites, str) else sites))
        bad = [s for s in sites if s not in valid]
        if bad or not sites:
            raise InterpAFError(f"site(s) {', '.join(bad) or '(none)'} unknown; valid sites: {', '.join(valid)}")
        n_layers = int(handle.n_layers)
        layers = tuple(range(n_layers)) if layers is None or len(layers) == 0 else tuple(sorted(set(int(x) for x in layers)))
        if layers[0] < 0 or layers[-1] >= n_layers:
            raise InterpAFError(f"layer(s) {list(layers)} out of range; this model has layers 0..{n_layers - 1}")
        self.positions = expand(positions)
        check_known(self.positions, set().union(*(p.positions.keys() for p in prompts)))
        dname = dtype or str(getattr(handle, "dtype", "torch.float32")).replace("torch.", "")
        if dname not in _DTYPES:
            raise InterpAFError(f"storage dtype {dname!r} unknown; use one of {', '.join(_DTYPES)}")
        self.handle, self.prompts, self.sites, self.layers = handle, prompts, sites, layers
        self.dtype = _DTYPES[dname]
        self.keys = [(s, p) for s in sites for p in self.positions]
        self.tails = {s: _tail_shape(handle, s) for s in sites}
        row_bytes = sum(len(layers) * math.prod(self.tails[s]) for s, _ in self.keys) * self.dtype.itemsize
        self.shard_rows = int(shard_rows) if shard_rows else default_shard_rows(row_bytes)
        self.n = len(prompts)
        self.n_shards = math.ceil(self.n / self.shard_rows)
        self.dt = None
        if metric:
            from interp_af.models.metric import decision_tokens

            self.dt = decision_tokens(handle.tokenizer)
        from interp_af.models.context import check_context

        # before the first pass (the metric appends the decision tokens' shared prefix to every prompt)
        check_context(handle, prompts, extra_tokens=len(self.dt.shared) if self.dt is not None else 0)
        self.want = {
            "model": ident.model_identity(handle, adapter=adapter, revision=revision),
            "prompts": {"n": self.n, "sha256": ident.prompts_hash(prompts)},
            "config": {
                "sites": list(sites), "layers": list(layers), "positions": list(self.positions),
                "storage_dtype": dname, "shard_rows": self.shard_rows, "padding_side": "left",
                "metric": "logit_diff" if metric else "none",
                "decision_tokens": None if self.dt is None else {
                    "shared": list(self.dt.shared), "accept_id": int(self.dt.accept_id),
                    "reject_id": int(self.dt.reject_id)},
            },
        }

    def shard_range(self, k: int) -> tuple[int, int]:
        return k * self.shard_rows, min(self.n, (k + 1) * self.shard_rows)

    def shard_file(self, k: int) -> str:
        return f"shards/shard-{k:05d}.safetensors"


@torch.no_grad()
def _run_shard(plan: _Plan, k: int, batch_size: int, bar: Any, stats: dict) -> tuple[dict[str, torch.Tensor], list]:
    """Forward every prompt of shard ``k``; return its tensors and per-row records."""
    handle, lo, hi = plan.handle, *plan.shard_range(k)
    n = hi - lo
    L = len(plan.layers)
    bufs = {array_key(s, p): torch.full((n, L, *plan.tails[s]), float("nan"), dtype=plan.dtype) for s, p in plan.keys}
    ldiff = torch.full((n,), float("nan"), dtype=torch.float32)
    at = [[resolve(spec, plan.prompts[i].positions, len(plan.prompts[i])) for spec in plan.positions]
          for i in range(lo, hi)]
    # longest first inside the shard: less padding per batch, and a deterministic function of the shard alone
    order = sorted(range(n), key=lambda j: (-len(plan.prompts[lo + j]), j))
    pad_id = pad_id_of(handle.tokenizer)
    capture = [SiteKey(s, layer) for s in plan.sites for layer in plan.layers]
    stop = None if plan.dt is not None else max(plan.layers) + 1
    for b0 in range(0, n, batch_size):
        js = order[b0:b0 + batch_size]
        seqs = [list(plan.prompts[lo + j].input_ids) for j in js]
        if plan.dt is not None:
            from interp_af.models.metric import metric_inputs

            seqs = [metric_inputs(s, plan.dt) for s in seqs]
        batch = collate(seqs, pad_id).to(handle.device)
        pos_BP = torch.tensor([[max(a, 0) for a in at[j]] for j in js], dtype=torch.long, device=handle.device)
        out = handle.forward(batch, capture=capture, capture_positions=pos_BP, stop_at_layer=stop)
        rows = torch.tensor(js)
        for s in plan.sites:
            for li, layer in enumerate(plan.layers):
                a = out.acts[SiteKey(s, layer)].detach().to("cpu", plan.dtype)  # [B, P, ...]
                for pi, spec in enumerate(plan.positions):
                    bufs[array_key(s, spec)][rows, li] = a[:, pi]
        if plan.dt is not None:
            from interp_af.models.metric import logit_diff

            ldiff[rows] = logit_diff(out.logits[:, -1], plan.dt).detach().float().cpu()
        del out
        _TRIM()
        stats["tokens"] += sum(len(s) for s in seqs)
        stats["prompts"] += len(js)
        if bar is not None:
            el = max(1e-9, time.perf_counter() - stats["t0"])
            bar.set_postfix_str(f"{stats['tokens'] / el:,.0f} tok/s", refresh=False)
            bar.update(len(js))
    for j in range(n):  # rows whose position is absent are NaN, whatever the placeholder index captured
        for pi, spec in enumerate(plan.positions):
            if at[j][pi] < 0:
                for s in plan.sites:
                    bufs[array_key(s, spec)][j] = float("nan")
    records = []
    for j in range(n):
        p = plan.prompts[lo + j]
        v = float(ldiff[j])
        records.append({
            "row": lo + j, "query_id": p.query_id, "arm": p.arm, "variant": p.variant, "meta": dict(p.meta),
            "input_ids": list(p.input_ids), "positions": dict(p.positions),
            "captured": dict(zip(plan.positions, at[j])),
            "logit_diff": None if math.isnan(v) else v, "complied": None if math.isnan(v) else v > 0,
        })
    return {**bufs, "logit_diff": ldiff}, records


def _write_shard(out: Path, plan: _Plan, k: int, tensors: dict, records: list, batch_size: int) -> dict:
    meta = {"rows": json.dumps(records, sort_keys=True, separators=(",", ":")), "batch_size": str(batch_size)}
    sha = sfio.save(out / plan.shard_file(k), tensors, meta)
    lo, hi = plan.shard_range(k)
    return {"file": plan.shard_file(k), "rows": [lo, hi], "sha256": sha,
            "bytes": (out / plan.shard_file(k)).stat().st_size, "batch_size": batch_size}


def _stream_array(out: Path, manifest: dict, key: str, chunk: int = 8 << 20) -> Iterator[bytes]:
    """The raw bytes of tensor ``key`` across all shards, in row order, read in bounded chunks."""
    for k in range(manifest["layout"]["n_shards"]):
        f = out / manifest["shards"][str(k)]["file"]
        head, start = sfio.read_header(f)
        lo, hi = head[key]["data_offsets"]
        with open(f, "rb") as fh:
            fh.seek(start + lo)
            left = hi - lo
            while left > 0:
                buf = fh.read(min(chunk, left))
                if not buf:
                    raise InterpAFError(f"capture shard {f} is truncated; delete it and rerun to recompute it")
                left -= len(buf)
                yield buf


def _shard_records(out: Path, manifest: dict) -> Iterator[dict]:
    for k in range(manifest["layout"]["n_shards"]):
        head, _ = sfio.read_header(out / manifest["shards"][str(k)]["file"])
        yield from json.loads(head["__metadata__"]["rows"])


def _finish(out: Path, plan: _Plan, manifest: dict) -> None:
    """Merge shards into one file per (site, position) + meta.jsonl + cue embeddings; flip status; drop shards."""
    owned.claim_dir(out / "acts", what="capture arrays")
    code = sfio.DTYPES[plan.dtype]
    record = checksums.Record(out / RECORD)
    arrays = {}
    for s, p in plan.keys:
        key = array_key(s, p)
        spec = sfio.Spec(code, (plan.n, len(plan.layers), *plan.tails[s]))
        rel = f"acts/{key}.safetensors"
        # chained, not a list: `[header, *stream]` would read the whole array into memory before writing it
        head = sfio.header_bytes({"acts": spec}, {"site": s, "position": p})
        sha = sfio.write_atomic(out / rel, itertools.chain([head], _stream_array(out, manifest, key)))
        arrays[key] = {"file": rel, "site": s, "position": p, "shape": list(spec.shape), "dtype": code,
                       "sha256": sha, "bytes": (out / rel).stat().st_size}
        checksums.remember(out / rel, sha, record=record)  # the digest of what was just written: no re-hash
    lines = (json.dumps(r, sort_keys=True, separators=(",", ":")).encode() + b"\n"
             for r in _shard_records(out, manifest))
    meta_sha = sfio.write_atomic(out / "meta.jsonl", lines)
    manifest["meta"] = {"file": "meta.jsonl", "sha256": meta_sha, "bytes": (out / "meta.jsonl").stat().st_size}
    checksums.remember(out / "meta.jsonl", meta_sha, record=record)
    cue = _cue_embeddings(plan.handle, _shard_records(out, manifest))
    if cue:
        sha = sfio.save(out / "cue_embeddings.safetensors", cue)
        manifest["cue_embeddings"] = {"file": "cue_embeddings.safetensors", "sha256": sha,
                                      "bytes": (out / "cue_embeddings.safetensors").stat().st_size}
        checksums.remember(out / "cue_embeddings.safetensors", sha, record=record)
    manifest["arrays"] = arrays
    manifest["status"] = "complete"
    manifest["layout"]["shards_merged"] = {k: v["rows"] for k, v in manifest.pop("shards").items()}
    write_manifest(out, manifest)
    record.save()
    _tidy(out)


def _tidy(out: Path) -> None:
    """What a finished capture must not hold: its shards and any killed writer's temporary file."""
    if (out / "shards").exists():
        owned.remove_owned(out / "shards")
    _sweep(out)


def capture(handle: Any, prompts: Sequence[Any], out_dir: str | Path, *, sites: Sequence[str] = ("resid_post",),
            layers: Sequence[int] | None = None, positions: Sequence[str] = DEFAULT_POSITIONS, batch_size: int = 16,
            metric: bool = True, dtype: str | None = None, shard_rows: int | None = None, overwrite: bool = False,
            adapter: str | None = None, revision: str | None = None, progress: bool = True,
            on_shard: Callable[[int], None] | None = None, allow_foreign: bool = False) -> Capture:
    """Capture ``sites`` x ``layers`` at ``positions`` of every prompt into ``out_dir``; return the :class:`Capture`.

    ``prompts``: RenderedPrompts (row ``i`` of every array is ``prompts[i]``). ``layers=None``: every layer.
    ``positions``: named positions, offsets or windows (:mod:`interp_af.acts.positions`). ``metric``: also read
    the compliance metric per row (needs the full forward pass; off = stop after the last captured layer).
    ``dtype``: storage dtype (default: the model's). Rerunning an interrupted call resumes it; rerunning a finished
    one returns it without recomputing. ``on_shard(k)`` is called after shard ``k`` is durably recorded.
    ``allow_foreign``: write into a folder that holds files interp_af did not write (they are never deleted).
    """
    positive_int(batch_size, "batch_size")
    if shard_rows is not None:
        positive_int(shard_rows, "shard_rows")
    handle = as_handle(handle)
    out = Path(out_dir)
    plan = _Plan(handle, prompts, sites, layers, positions, metric, dtype, shard_rows, adapter, revision)
    if out.exists() and not out.is_dir():
        raise InterpAFError(f"output path {out} is a file; choose a folder for --out")
    _claim(out, allow_foreign)
    with owned.writer_lock(out, what="capture", hint="wait for it or choose another --out"):
        old = _prepare_dir(out, plan.want, overwrite)
        # a killed run's temporary files (kill -9 while a shard or an array was being written) go first
        _sweep(out)
        if old is not None and old.get("status") == "complete":
            _tidy(out)  # a crash between the last rename and the cleanup
            return open_capture(out)
        manifest = old or {
            "format": FORMAT, "version": VERSION, "status": "writing", **plan.want,
            "layout": {"shard_rows": plan.shard_rows, "n_shards": plan.n_shards}, "shards": {},
            "software": _software(), "device": str(getattr(handle, "device", "")),
        }
        owned.claim_dir(out / "shards", what="capture shards")
        write_manifest(out, manifest)
        todo = []
        for k in range(plan.n_shards):
            entry = manifest["shards"].get(str(k))
            if entry is not None and (out / entry["file"]).exists():
                verify_file(out, entry, "shard")  # a corrupted shard is named, never silently reused
            else:
                manifest["shards"].pop(str(k), None)
                todo.append(k)
        done_rows = plan.n - sum(plan.shard_range(k)[1] - plan.shard_range(k)[0] for k in todo)
        stats = {"tokens": 0, "prompts": 0, "t0": time.perf_counter()}
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=plan.n, initial=done_rows, unit="prompt", desc=f"capture -> {out.name}")
        try:
            for k in todo:
                tensors, records = _run_shard(plan, k, batch_size, bar, stats)
                manifest["shards"][str(k)] = _write_shard(out, plan, k, tensors, records, batch_size)
                del tensors
                write_manifest(out, manifest)
                if on_shard is not None:
                    on_shard(k)
        finally:
            if bar is not None:
                bar.close()
        _finish(out, plan, manifest)
    return open_capture(out, verify=False)
