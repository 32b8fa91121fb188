"""Exact activation patching between aligned twins.

Two prompts of one query differ only at the arm's cue (``true`` vs ``false`` in the tier tag). Run one of them
(the *target*), and replace the activation of one site - the residual stream at a layer and position, an
attention or MLP output, one attention head - by its value in the other prompt (the *source*). How far the
compliance metric moves towards the source's value says how much of the gap flows through that site.

- **denoising** (clean into corrupt): target = corrupt arm, source = clean arm. Tests *sufficiency*: does this
  site alone carry enough to restore the clean behaviour?
- **noising** (corrupt into clean): target = clean arm, source = corrupt arm. Tests *necessity*.

They differ (Heimersheim & Nanda); report both. ``clean`` names the clean arm ("a" = the twin's first arm, e.g.
the trained "free" arm, by default). The metric is the logit difference at the decision position, normalised
so that 0 = the unpatched target run and 1 = the source run (:mod:`interp_af.analysis.effects`), averaged over
queries (ratio of means) with a query-bootstrap interval.

Grids: ``resid_pre``/``resid_post`` by layer x position; ``attn_out``/``mlp_out`` by layer (x position with
``by_position=True``); ``head_out`` by layer x head over all positions (or x position). Positions are the
prompt's own tokens (plus the teacher-forced shared prefix of the two answers). When several queries are
patched together the axis is: every position of the common prefix, one ``<query>`` bin holding the
query-specific tokens (patched together), and every position of the common suffix; when the prompts differ already before the cue
(paraphrased system prompts), the axis is anchored on the cue instead (``<before cue>``, ``cue-k``, ``cue+j``,
``<query>``, ``end-k``). Cells before the first
differing token have exactly zero effect: they are not computed and are reported as 0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import torch
from torch import Tensor
from tqdm import tqdm

from interp_af.analysis.effects import effect_interval, normalised_effect
from interp_af.errors import InterpAFError
from interp_af.models.patching import Cell
from interp_af.models.sites import SITES
from interp_af.models.wrap import as_handle
from interp_af.setting.types import Twin

from interp_af.analysis.vocab import DIRECTIONS  # noqa: E402
QUERY_BIN = "<query>"


@dataclass(frozen=True)
class PatchResult:
    """A patch grid: ``patched[q, layer, head, column]`` = logit diff of the patched target run of query ``q``.

    ``heads`` is ``(-1,)`` for sites without heads (one pseudo-head), ``columns`` the x labels (``"i:token"``, ``"i:tok_a→tok_b"`` where the arms differ, the
    ``<query>`` bin, ``"end-k:token"`` for the common suffix, or ``"all"``). ``computed[layer, head, column]`` is
    False where every query's cell was known to be exactly zero and skipped."""

    site: str
    direction: str
    clean_arm: str
    layers: tuple[int, ...]
    heads: tuple[int, ...]
    columns: tuple[str, ...]
    query_ids: tuple[str, ...]
    patched: Tensor   # [Q, L, H, X]
    target: Tensor    # [Q] unpatched target run
    source: Tensor    # [Q] the other arm (the source of the patch)
    computed: Tensor  # [L, H, X] bool
    n_boot: int = 1000
    seed: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    def effect(self) -> Tensor:
        """Normalised effect ``[L, H, X]`` (0 = unpatched, 1 = the other arm), ratio of means over queries."""
        Q = self.patched.shape[0]
        return normalised_effect(self.patched.reshape(Q, -1), self.target, self.source).reshape(self.patched.shape[1:])

    def interval(self, level: float = 0.95) -> tuple[Tensor, Tensor]:
        """Query-bootstrap interval of :meth:`effect` -> ``(lo, hi)``, each ``[L, H, X]``."""
        Q = self.patched.shape[0]
        lo, hi = effect_interval(self.patched.reshape(Q, -1), self.target, self.source, n_boot=self.n_boot,
                                 level=level, seed=self.seed)
        return lo.reshape(self.patched.shape[1:]), hi.reshape(self.patched.shape[1:])

    def matrix(self) -> Tensor:
        """The 2-D view for a heatmap: layer x column (no heads), layer x head (one column), else layer x
        (head, column) flattened."""
        e = self.effect()
        if self.heads == (-1,):
            return e[:, 0, :]
        if len(self.columns) == 1:
            return e[:, :, 0]
        return e.reshape(e.shape[0], -1)

    def to_frame(self) -> pd.DataFrame:
        """One row per cell: layer, head (-1 = none), column, effect, lo, hi, computed."""
        e, (lo, hi) = self.effect(), self.interval()
        rows = []
        for i, L in enumerate(self.layers):
            for j, h in enumerate(self.heads):
                for k, col in enumerate(self.columns):
                    rows.append(dict(site=self.site, direction=self.direction, layer=L, head=h, column=col,
                                     column_index=k, effect=float(e[i, j, k]), lo=float(lo[i, j, k]),
                                     hi=float(hi[i, j, k]), computed=bool(self.computed[i, j, k]),
                                     n_queries=len(self.query_ids)))
        return pd.DataFrame(rows)

    def save(self, out_dir: str | Path) -> Path:
        """Write ``patch.json`` (config, labels) and ``patch.safetensors`` (tensors) into ``out_dir``."""
        from interp_af import atomic, owned

        out = owned.ensure_dir(out_dir, what="patching")
        meta = {k: getattr(self, k) for k in ("site", "direction", "clean_arm", "layers", "heads", "columns",
                                               "query_ids", "n_boot", "seed", "info")}
        text = json.dumps(meta, indent=2)  # serialised first: a value JSON cannot hold fails before any write
        atomic.write_safetensors(out / "patch.safetensors", {
            "patched": self.patched, "target": self.target, "source": self.source,
            "computed": self.computed.to(torch.uint8)})
        atomic.write_text(out / "patch.json", text)
        return out

    @classmethod
    def load(cls, out_dir: str | Path) -> "PatchResult":
        from safetensors.torch import load_file

        d = Path(out_dir)
        if not (d / "patch.json").exists():
            raise InterpAFError(f"{d} holds no patch.json; point at a directory written by PatchResult.save")
        meta = json.loads((d / "patch.json").read_text())
        t = load_file(str(d / "patch.safetensors"))
        for k in ("layers", "heads", "columns", "query_ids"):
            meta[k] = tuple(meta[k])
        return cls(**meta, patched=t["patched"], target=t["target"], source=t["source"],
                   computed=t["computed"].bool())


def check_aligned(twins: Sequence[Twin]) -> None:
    """Raise a one-line :class:`InterpAFError` for the first twin that is not token-aligned."""
    if not twins:
        raise InterpAFError("no twins given; build them with interp_af.setting.twins.make_twins")
    for tw in twins:
        a, b = tw.a.input_ids, tw.b.input_ids
        diff = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        if not tw.aligned or len(a) != len(b) or not diff:
            why = tw.reason or (f"lengths {len(a)} vs {len(b)}" if len(a) != len(b) else "the arms are identical")
            raise InterpAFError(
                f"twin {tw.query_id!r} is not aligned ({why}; differing positions {list(tw.diff_positions)[:8]}): "
                "exact patching needs same-length twins that differ only at the cue; use a variant whose cue "
                "values tokenize to the same number of tokens")


def _token_label(tokenizer: Any, tok_id: int) -> str:
    return tokenizer.decode([tok_id]).replace("\n", "\\n")


def position_axis(tokenizer: Any, targets: Sequence[Sequence[int]], sources: Sequence[Sequence[int]],
                  ) -> tuple[list[str], list[list[tuple[int, ...]]]]:
    """The x axis shared by all queries -> ``(labels, bins[q][x] = positions of bin x in query q)``."""
    seqs = [*targets, *sources]
    n_min = min(len(s) for s in seqs)
    cp = 0
    while cp < n_min and all(len({s[cp] for s in group}) == 1 for group in (targets, sources)):
        cp += 1
    same_len = len({len(s) for s in seqs}) == 1
    if same_len and cp == n_min:  # one query (or identical prompts): every position is a column
        labels = [f"{i}:{_lbl(tokenizer, targets[0][i], sources[0][i])}" for i in range(n_min)]
        return labels, [[(i,) for i in range(n_min)] for _ in targets]
    diffs = [[i for i, (x, y) in enumerate(zip(t, u)) if x != y] for t, u in zip(targets, sources)]
    f_min = min(d[0] for d in diffs)
    widths = {d[-1] - d[0] for d in diffs}
    if cp <= f_min and len(widths) == 1:  # prompts differ before the cue (e.g. paraphrased system prompts)
        return _cue_anchored_axis(tokenizer, targets, sources, [d[0] for d in diffs], widths.pop() + 1, cp)
    cs = _common_suffix(targets, sources, n_min - cp)
    labels = [f"{i}:{_lbl(tokenizer, targets[0][i], sources[0][i])}" for i in range(cp)] + [QUERY_BIN]
    labels += [f"end-{k}:{_lbl(tokenizer, targets[0][-k], sources[0][-k])}" for k in range(cs, 0, -1)]
    bins = []
    for t in targets:
        n = len(t)
        bins.append([(i,) for i in range(cp)] + [tuple(range(cp, n - cs))] + [(n - k,) for k in range(cs, 0, -1)])
    return labels, bins


def _common_suffix(targets: Sequence[Sequence[int]], sources: Sequence[Sequence[int]], limit: int) -> int:
    cs = 0
    while cs < limit and all(len({s[len(s) - 1 - cs] for s in group}) == 1 for group in (targets, sources)):
        cs += 1
    return cs


def _cue_anchored_axis(tokenizer: Any, targets: Sequence[Sequence[int]], sources: Sequence[Sequence[int]],
                       fs: list[int], width: int, cp: int) -> tuple[list[str], list[list[tuple[int, ...]]]]:
    """Axis aligned on the cue when prompts differ before it: common prefix | <before cue> | tokens just
    before the cue | the cue | tokens just after it | <query> | common suffix."""
    def same(offset_of) -> bool:
        vals = [{s[offset_of(f)] for s in group} for f, group in ((f, (t, u)) for f, t, u in zip(fs, targets, sources))]
        return len({tuple(sorted(v)) for v in vals}) == 1 and all(len(v) == 1 for v in vals)

    kb = 0
    while kb < min(fs) - cp and same(lambda f: f - 1 - kb):
        kb += 1
    after = min(len(t) - f - width for t, f in zip(targets, fs))
    cs = _common_suffix(targets, sources, after)
    ka = 0
    while ka < after - cs and same(lambda f: f + width + ka):
        ka += 1
    t0, s0, f0 = targets[0], sources[0], fs[0]
    labels = [f"{i}:{_lbl(tokenizer, t0[i], s0[i])}" for i in range(cp)] + ["<before cue>"]
    labels += [f"cue-{k}:{_lbl(tokenizer, t0[f0 - k], s0[f0 - k])}" for k in range(kb, 0, -1)]
    labels += [f"cue+{j}:{_lbl(tokenizer, t0[f0 + j], s0[f0 + j])}" for j in range(width + ka)]
    labels += [QUERY_BIN] + [f"end-{k}:{_lbl(tokenizer, t0[-k], s0[-k])}" for k in range(cs, 0, -1)]
    bins = []
    for t, f in zip(targets, fs):
        n = len(t)
        bins.append([(i,) for i in range(cp)] + [tuple(range(cp, f - kb))] + [(f - k,) for k in range(kb, 0, -1)]
                    + [(f + j,) for j in range(width + ka)] + [tuple(range(f + width + ka, n - cs))]
                    + [(n - k,) for k in range(cs, 0, -1)])
    return labels, bins


def _lbl(tokenizer: Any, t: int, s: int) -> str:
    return _token_label(tokenizer, t) if t == s else f"{_token_label(tokenizer, t)}→{_token_label(tokenizer, s)}"


def _check_range(what: str, values: Sequence[int], n: int) -> tuple[int, ...]:
    bad = [v for v in values if not 0 <= v < n]
    if bad:
        raise InterpAFError(f"{what} {bad} out of range; the model has {what}s 0..{n - 1}")
    return tuple(values)


def patch_twins(model: Any, twins: Sequence[Twin], *, site: str = "resid_pre", direction: str = "denoise",
                clean: str = "a", by_position: bool | None = None, layers: Sequence[int] | None = None,
                heads: Sequence[int] | None = None, dt: Any = None, batch_size: int = 64, n_boot: int = 1000,
                seed: int = 0, fast: bool = True, progress: bool = True) -> PatchResult:
    """Exact activation patching of ``site`` over aligned ``twins``; see the module docstring.

    ``model``: a :class:`ModelHandle` or any object :func:`~interp_af.models.wrap.as_handle` takes (a
    ``HookedTransformer``, an nnsight ``LanguageModel``, ...). ``by_position`` defaults to True for the residual
    stream and False otherwise. ``dt``: decision tokens (default: from the tokenizer). ``fast=False`` forces the
    generic patching path (:func:`interp_af.models.patching.patch_generic`) instead of the backend's fast one.
    """
    if site not in SITES:
        raise InterpAFError(f"site {site!r} is unknown; use one of {', '.join(SITES)}")
    if direction not in DIRECTIONS:
        raise InterpAFError(f"direction {direction!r} is unknown; use 'denoise' or 'noise'")
    if clean not in ("a", "b"):
        raise InterpAFError(f"clean={clean!r}: name the clean arm as 'a' (the twin's first arm) or 'b'")
    from interp_af.checks import nonneg_int, positive_int

    positive_int(batch_size, "batch_size")
    nonneg_int(n_boot, "n_boot", "0 = no intervals")
    check_aligned(twins)
    handle = as_handle(model)
    n_layers, n_heads = handle.n_layers, handle.n_heads
    layers = _check_range("layer", range(n_layers) if layers is None else layers, n_layers)
    if site == "head_out":
        heads_t = _check_range("head", range(n_heads) if heads is None else heads, n_heads)
    elif heads is not None:
        raise InterpAFError(f"heads= only applies to site 'head_out', not {site!r}")
    else:
        heads_t = (-1,)
    by_position = site in ("resid_pre", "resid_post") if by_position is None else by_position
    tok = handle.tokenizer
    if dt is None:
        from interp_af.models.metric import decision_tokens

        dt = decision_tokens(tok)
    shared = list(dt.shared)
    clean_ids = [list((tw.a if clean == "a" else tw.b).input_ids) + shared for tw in twins]
    corrupt_ids = [list((tw.b if clean == "a" else tw.a).input_ids) + shared for tw in twins]
    targets, sources = (corrupt_ids, clean_ids) if direction == "denoise" else (clean_ids, corrupt_ids)
    if by_position:
        labels, bins = position_axis(tok, targets, sources)
    else:
        labels, bins = ["all"], [[tuple(range(len(t)))] for t in targets]
    Q, L, H, X = len(twins), len(layers), len(heads_t), len(labels)
    patched = torch.zeros(Q, L, H, X, dtype=torch.float64)
    target_ld = torch.zeros(Q, dtype=torch.float64)
    source_ld = torch.zeros(Q, dtype=torch.float64)
    computed = torch.zeros(L, H, X, dtype=torch.bool)
    n_cells, rows, path = 0, 0.0, ""
    for q in tqdm(range(Q), desc=f"patch {site} ({direction})", disable=not progress or Q < 2):
        t_ids, s_ids = targets[q], sources[q]
        f = next(i for i, (x, y) in enumerate(zip(t_ids, s_ids)) if x != y)
        cells, slots = [], []
        for i, layer in enumerate(layers):
            for j, h in enumerate(heads_t):
                for k, pos in enumerate(bins[q]):
                    live = tuple(p for p in pos if p >= f)  # earlier positions: identical in both runs
                    if live:
                        cells.append(Cell(layer, None if h < 0 else h, live))
                        slots.append((i, j, k))
        run = handle.patch_cells(site, t_ids, s_ids, cells, dt, batch_size=batch_size, fast=fast)
        lds, ld_t, ld_s = run.values, run.target, run.source
        rows, path = rows + run.rows, run.path
        target_ld[q], source_ld[q] = ld_t, ld_s
        patched[q] = ld_t  # skipped cells: exactly the unpatched run
        for (i, j, k), v in zip(slots, lds.tolist()):
            patched[q, i, j, k] = v
            computed[i, j, k] = True
        n_cells += len(cells)
    info = {"cells_total": Q * L * H * X, "cells_computed": n_cells, "path": path, "forward_rows": float(rows)}
    return PatchResult(site=site, direction=direction, clean_arm=_arm_name(twins[0], clean), layers=layers,
                       heads=heads_t, columns=tuple(labels), query_ids=tuple(tw.query_id for tw in twins),
                       patched=patched, target=target_ld, source=source_ld, computed=computed, n_boot=n_boot,
                       seed=seed, info=info)


def _arm_name(tw: Twin, clean: str) -> str:
    p = tw.a if clean == "a" else tw.b
    return p.arm or clean
