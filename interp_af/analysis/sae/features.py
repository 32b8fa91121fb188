"""Feature activations at named positions, and the features that differ between arms.

A prompt's feature vector at a named position ("cue", "end_user", "decision") is the SAE's ``encode`` of the
site's activation there. Comparing arms must respect the pairing by query: twins share everything but the cue,
so the statistic is computed on per-query differences (arm a minus arm b, each query's prompts of one arm
averaged first), never on pooled prompts: a paired t statistic over queries, its two-sided p-value, a
Benjamini-Hochberg q-value across features, and a bootstrap-free normal 95% interval of the mean difference.

Activations can come from a forward pass through the model handle (:func:`encode_prompts`) or from a capture on
disk (:func:`encode_capture`: the capture stores the site at the named positions per layer).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float
from safetensors.torch import load_file
from torch import Tensor
from tqdm import tqdm

from interp_af.models.wrap import as_handle
from interp_af.analysis.sae.load import as_sae
from interp_af.errors import InterpAFError
from interp_af.setting.types import RenderedPrompt

from . import _run
from .load import LoadedSAE


@dataclass(frozen=True)
class FeatureActs:
    """Feature activations ``acts[prompt, position, feature]`` at named ``positions``, with each prompt's query
    id and arm (row order = prompt order)."""

    sae: str
    site: str
    positions: tuple[str, ...]
    acts: Float[Tensor, "n p d_sae"]
    query_id: tuple[str, ...]
    arm: tuple[str, ...]

    def at(self, position: str) -> Float[Tensor, "n d_sae"]:
        if position not in self.positions:
            raise InterpAFError(f"position {position!r} was not encoded (have {', '.join(self.positions)}); "
                                "encode it first")
        return self.acts[:, self.positions.index(position)]

    def save(self, path: str | Path) -> Path:
        from interp_af import atomic, owned

        path = owned.ensure_dir(path, what="sae features")
        meta = {"sae": self.sae, "site": self.site, "positions": list(self.positions),
                "query_id": list(self.query_id), "arm": list(self.arm)}
        text = json.dumps(meta, indent=1)
        atomic.write_safetensors(path / "acts.safetensors", {"acts": self.acts})
        atomic.write_text(path / "acts.json", text)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "FeatureActs":
        path = Path(path)
        meta = json.loads((path / "acts.json").read_text())
        return cls(meta["sae"], meta["site"], tuple(meta["positions"]), load_file(str(path / "acts.safetensors"))["acts"],
                   tuple(meta["query_id"]), tuple(meta["arm"]))


@torch.no_grad()
def encode_prompts(handle: Any, sae: LoadedSAE, prompts: Sequence[RenderedPrompt], dt: Any, *,
                   positions: Sequence[str] = ("cue", "end_user", "decision"), batch_size: int = 16,
                   progress: bool = True) -> FeatureActs:
    """Encode the SAE's site at ``positions`` of every prompt (one forward pass per batch, stopped after the
    SAE's layer)."""
    from interp_af.checks import positive_int

    positive_int(batch_size, "batch_size")
    handle = as_handle(handle)
    sae = as_sae(sae)
    key = sae.site
    chunks = []
    for pb in tqdm(list(_run.batches(handle, prompts, dt, positions, batch_size)), desc=f"SAE encode {key}",
                   leave=False, disable=not progress):
        out = handle.forward(pb.batch, capture=(key,), capture_positions=pb.positions, stop_at_layer=key.layer + 1)
        chunks.append(sae.encode(out.acts[key]).cpu())
    return FeatureActs(sae.source, str(key), tuple(positions), torch.cat(chunks),
                       tuple(p.query_id for p in prompts), tuple(p.arm for p in prompts))


@torch.no_grad()
def encode_capture(capture: Any, sae: LoadedSAE, positions: Sequence[str] | None = None,
                   batch_rows: int = 256) -> FeatureActs:
    """Encode the SAE's site from a capture on disk (``Capture.acts(site, position)[:, layer_index]``), in row
    chunks so that memory stays bounded."""
    key = sae.site
    if key.site not in capture.sites:
        raise InterpAFError(f"capture {capture.path} has sites {capture.sites}, not {key.site}; capture that site")
    if key.layer not in capture.layers:
        raise InterpAFError(f"capture {capture.path} has layers {capture.layers}, not {key.layer}; capture that layer")
    li = list(capture.layers).index(key.layer)
    positions = tuple(positions or capture.positions)
    per_pos = []
    for name in positions:
        if name not in capture.positions:
            raise InterpAFError(f"capture {capture.path} has positions {capture.positions}, not {name!r}")
        x = capture.acts(key.site, name)
        chunks = []
        for s in range(0, capture.n_rows, batch_rows):
            xs = torch.as_tensor(x[s:s + batch_rows, li]).float()
            absent = torch.isnan(xs).any(-1)            # the capture stores NaN where a prompt lacks the position
            f = sae.encode(torch.nan_to_num(xs))
            f[absent] = float("nan")
            chunks.append(f)
        per_pos.append(torch.cat(chunks))
    meta = capture.meta()
    return FeatureActs(sae.source, str(key), positions, torch.stack(per_pos, 1),
                       tuple(str(q) for q in meta["query_id"]), tuple(str(a) for a in meta["arm"]))


def _per_query(values: np.ndarray, qid: Sequence[str], arm: Sequence[str], arms: tuple[str, str]) -> np.ndarray:
    """``values [n, ...]`` -> per-query differences ``[n_queries, ...]`` (arm a mean minus arm b mean)."""
    sums: dict[str, list] = {}
    for i, (q, a) in enumerate(zip(qid, arm)):
        if a not in arms:
            continue
        entry = sums.setdefault(q, [0.0, 0, 0.0, 0])
        j = 2 * arms.index(a)
        entry[j] = entry[j] + values[i]
        entry[j + 1] += 1
    diffs = [s[0] / s[1] - s[2] / s[3] for s in sums.values() if s[1] and s[3]]
    if not diffs:
        raise InterpAFError(f"no query has prompts in both arms {arms}; pass twins (same query_id in both arms)")
    return np.stack(diffs)


def paired_stats(values: np.ndarray, qid: Sequence[str], arm: Sequence[str], arms: tuple[str, str]) -> pd.DataFrame:
    """Per column of ``values [n, k]``: mean of arm a, mean of arm b, mean per-query difference, its normal 95%
    interval, paired t, two-sided p, BH q. Grouped by query."""
    from scipy import stats

    d = _per_query(values, qid, arm, arms)
    n = d.shape[0]
    mean = d.mean(0)
    sd = d.std(0, ddof=1) if n > 1 else np.zeros_like(mean)
    se = sd / np.sqrt(max(n, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0, mean / se, 0.0)
    p = 2 * stats.t.sf(np.abs(t), df=max(n - 1, 1))
    p = np.where(se > 0, p, np.where(mean != 0, 0.0, 1.0))
    order = np.argsort(p)
    ranked = p[order] * len(p) / np.arange(1, len(p) + 1)
    q = np.empty_like(p)
    q[order] = np.minimum.accumulate(ranked[::-1])[::-1].clip(max=1.0)
    arm_np = np.asarray(arm)
    return pd.DataFrame({
        "mean_a": values[arm_np == arms[0]].mean(0), "mean_b": values[arm_np == arms[1]].mean(0),
        "diff": mean, "ci_lo": mean - 1.96 * se, "ci_hi": mean + 1.96 * se, "t": t, "p": p, "q": q,
        "n_queries": n,
    })


@dataclass(frozen=True)
class DifferentialFeatures:
    """Per feature and position: activation in each arm and the paired (by query) difference, sorted by |t|."""

    sae: str
    site: str
    arms: tuple[str, str]
    table: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def top(self, position: str, k: int = 10) -> pd.DataFrame:
        from interp_af.checks import positive_int

        positive_int(k, "k")
        t = self.table[self.table["position"] == position]
        return t.reindex(t["t"].abs().sort_values(ascending=False).index).head(k)

    def save(self, path: str | Path) -> Path:
        from interp_af import atomic, owned

        path = Path(path)
        owned.ensure_dir(path.parent, what="sae features")
        payload = {"sae": self.sae, "site": self.site, "arms": list(self.arms),
                   "table": json.loads(self.table.to_json(orient="records"))}
        return atomic.write_json(path, payload, indent=None)

    @classmethod
    def load(cls, path: str | Path) -> "DifferentialFeatures":
        d = json.loads(Path(path).read_text())
        return cls(d["sae"], d["site"], tuple(d["arms"]), pd.DataFrame(d["table"]))


def differential_features(fa: FeatureActs, *, arms: tuple[str, str] | None = None,
                          positions: Sequence[str] | None = None, min_active: float = 0.0) -> DifferentialFeatures:
    """Features whose activation differs between ``arms`` at each named position (paired by query).
    ``min_active``: keep only features active in at least that fraction of prompts of either arm."""
    arms_t = _run.arms_of([_Arm(a) for a in fa.arm], arms)
    frames = []
    for name in positions or fa.positions:
        v_all = fa.at(name).numpy().astype(np.float64)
        ok = ~np.isnan(v_all).any(1)                      # prompts that lack this position (NaN) are left out
        v, arm_np = v_all[ok], np.asarray(fa.arm)[ok]
        qid, arm_ok = [q for q, k in zip(fa.query_id, ok) if k], [a for a, k in zip(fa.arm, ok) if k]
        if not {*arms_t} <= set(arm_ok):
            continue
        active = np.maximum((v[arm_np == arms_t[0]] > 0).mean(0), (v[arm_np == arms_t[1]] > 0).mean(0))
        keep = np.flatnonzero(active > min_active) if min_active > 0 else np.flatnonzero(active > 0)
        if keep.size == 0:
            continue
        df = paired_stats(v[:, keep], qid, arm_ok, arms_t)
        df.insert(0, "feature", keep)
        df.insert(0, "position", name)
        df["frac_active"] = active[keep]
        frames.append(df)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["position", "feature", "mean_a", "mean_b", "diff", "ci_lo", "ci_hi", "t", "p", "q", "n_queries",
                 "frac_active"])
    table = table.reindex(table["t"].abs().sort_values(ascending=False).index).reset_index(drop=True)
    return DifferentialFeatures(fa.sae, fa.site, arms_t, table)


@dataclass(frozen=True)
class _Arm:
    """Adapter so :func:`_run.arms_of` can read arms from a plain list."""

    arm: str
