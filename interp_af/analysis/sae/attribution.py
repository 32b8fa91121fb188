"""Attribution of the compliance metric to SAE features, with the SAE's error term as its own node.

Splice an SAE at a site: ``x = decode(f) + e`` with ``f = encode(x)`` and the error ``e = x - decode(f)``. With the
error term the forward pass is unchanged, so the gradient of the metric ``M`` (logit difference at the decision)
w.r.t. ``x`` is the ordinary one; ``dM/df`` is that gradient pulled back through the decoder (``W_dec @ dM/dx`` for
a plain decoder; taken by autograd through ``sae.decode`` so rescaled decoders are exact) and ``dM/de = dM/dx``.

- **grad x act** (one forward + one backward per batch): ``attr_i = f_i * (W_dec dM/dx)_i`` for each feature and
  ``attr_err = e . dM/dx``; a first-order estimate of the effect of zero-ablating each node.
- **integrated gradients** (Sparse Feature Circuits; ``steps`` forward + backward passes): the site's nodes at the
  chosen positions move together along the straight path from the baseline (every feature and the error at 0,
  i.e. ``x = decode(0)``) to their actual values; the gradient is averaged over the path (midpoint rule). The
  attributions of all features plus the error node then sum to ``M(x) - M(baseline)`` (completeness).

Attribution is per prompt and named position; summaries average it per arm with normal 95% intervals over
prompts, and compare arms paired by query.
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
from interp_af.models.interventions import Intervention
from interp_af.setting.types import RenderedPrompt

from . import _run
from .features import paired_stats
from .load import LoadedSAE

METHODS = ("gxa", "ig")


@dataclass(frozen=True)
class FeatureAttribution:
    """``attr[prompt, position, feature]`` and ``err[prompt, position]`` (the error node), plus the feature
    activations and the clean metric of each prompt. Units: logit difference."""

    sae: str
    site: str
    method: str
    steps: int
    positions: tuple[str, ...]
    attr: Float[Tensor, "n p d_sae"]
    err: Float[Tensor, "n p"]
    acts: Float[Tensor, "n p d_sae"]
    metric: Float[Tensor, " n"]
    query_id: tuple[str, ...]
    arm: tuple[str, ...]

    def _pos(self, position: str) -> int:
        if position not in self.positions:
            raise InterpAFError(f"position {position!r} not attributed (have {', '.join(self.positions)})")
        return self.positions.index(position)

    def summary(self, position: str = "decision", arm: str | None = None) -> pd.DataFrame:
        """Per feature (and the error node, feature = -1): mean attribution over prompts (of ``arm``, or all),
        normal 95% interval, mean activation, fraction of prompts where the feature is active."""
        j = self._pos(position)
        sel = np.ones(len(self.arm), bool) if arm is None else np.asarray(self.arm) == arm
        if not sel.any():
            raise InterpAFError(f"no prompts of arm {arm!r} (arms: {sorted(set(self.arm))})")
        a = torch.cat([self.attr[sel][:, j], self.err[sel][:, j, None]], 1).double().numpy()
        acts = torch.cat([self.acts[sel][:, j], torch.zeros(int(sel.sum()), 1)], 1).double().numpy()
        n = a.shape[0]
        mean, se = a.mean(0), (a.std(0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros(a.shape[1]))
        feats = np.r_[np.arange(self.attr.shape[-1]), -1]
        return pd.DataFrame({"feature": feats, "position": position, "arm": arm or "all", "attr": mean,
                             "ci_lo": mean - 1.96 * se, "ci_hi": mean + 1.96 * se, "act": acts.mean(0),
                             "frac_active": (acts > 0).mean(0), "n": n})

    def top(self, position: str = "decision", arm: str | None = None, k: int = 10, *,
            by: str = "abs", include_error: bool = True) -> pd.DataFrame:
        """Top ``k`` nodes by |mean attribution| (``by="abs"``), or most positive / negative (``"pos"``/``"neg"``);
        nodes with exactly zero attribution are left out (fewer than ``k`` rows then)."""
        from interp_af.checks import positive_int

        positive_int(k, "k")
        s = self.summary(position, arm)
        s = s[s["attr"] != 0]                  # features that never fire (or get no gradient) are not "top"
        if not include_error:
            s = s[s["feature"] >= 0]
        key = {"abs": s["attr"].abs(), "pos": s["attr"], "neg": -s["attr"]}[by]
        return s.loc[key.sort_values(ascending=False).index].head(k).reset_index(drop=True)

    def compare_arms(self, position: str = "decision", arms: tuple[str, str] | None = None,
                     k: int = 10) -> dict[str, Any]:
        """Top-``k`` features (by |attribution|, error node excluded) in each arm, their overlap (Jaccard), and a
        paired-by-query table of the attribution difference per feature."""
        from interp_af.checks import positive_int

        positive_int(k, "k")
        arms_t = _run.arms_of([_A(a) for a in self.arm], arms)
        tops = [self.top(position, a, k, include_error=False)["feature"].tolist() for a in arms_t]
        inter, union = set(tops[0]) & set(tops[1]), set(tops[0]) | set(tops[1])
        j = self._pos(position)
        diff = paired_stats(self.attr[:, j].double().numpy(), self.query_id, self.arm, arms_t)
        diff.insert(0, "feature", np.arange(self.attr.shape[-1]))
        diff = diff.reindex(diff["diff"].abs().sort_values(ascending=False).index).reset_index(drop=True)
        return {"arms": arms_t, "top_a": tops[0], "top_b": tops[1], "jaccard": len(inter) / max(len(union), 1),
                "paired": diff}

    def to_frame(self) -> pd.DataFrame:
        """Long table: one row per position x arm x node with nonzero mean attribution."""
        frames = [self.summary(p, a) for p in self.positions for a in sorted(set(self.arm))]
        df = pd.concat(frames, ignore_index=True)
        return df[df["attr"] != 0].reset_index(drop=True)

    def save(self, path: str | Path) -> Path:
        from interp_af import atomic, owned

        path = owned.ensure_dir(path, what="sae attribution")
        meta = {"sae": self.sae, "site": self.site, "method": self.method, "steps": self.steps,
                "positions": list(self.positions), "query_id": list(self.query_id), "arm": list(self.arm)}
        text = json.dumps(meta, indent=1)
        atomic.write_safetensors(path / "attribution.safetensors", {"attr": self.attr, "err": self.err,
                                                                     "acts": self.acts, "metric": self.metric})
        atomic.write_text(path / "attribution.json", text)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "FeatureAttribution":
        path = Path(path)
        m = json.loads((path / "attribution.json").read_text())
        t = load_file(str(path / "attribution.safetensors"))
        return cls(m["sae"], m["site"], m["method"], m["steps"], tuple(m["positions"]), t["attr"], t["err"],
                   t["acts"], t["metric"], tuple(m["query_id"]), tuple(m["arm"]))


@dataclass(frozen=True)
class _A:
    arm: str


def _grad_at(handle: Any, pb: _run.PromptBatch, sae: LoadedSAE, dt: Any, value: Tensor | None,
             ) -> tuple[Tensor, Tensor, Tensor]:
    """One forward + backward. Returns (activation at the positions [B,P,d], dM/d activation [B,P,d], M [B]).
    With ``value``, the site at the positions is replaced by it first (the gradient is then taken at ``value``)."""
    key = sae.site
    ivs: list[Intervention] = []
    if value is not None:
        value = value.detach().requires_grad_(True)
        ivs = [Intervention(key.site, key.layer, "replace", pb.positions, value)]
    # capture the whole live activation (contract: grad=True keeps it in the graph with retain_grad); a slice
    # taken inside a backend would not lie on the path to the logits and would get no gradient
    out = handle.forward(pb.batch, capture=(key,), interventions=ivs, grad=True)
    live = out.acts[key]
    m = _run.logit_diff(out.logits[:, -1], dt)
    m.sum().backward()
    rows = torch.arange(live.shape[0], device=live.device)[:, None]
    cols = pb.batch.columns(pb.positions)
    x = live.detach()[rows, cols]
    # a backend may route the gradient to the replacement value or to the captured (post-edit) activation
    if value is not None and value.grad is not None:
        grad = value.grad
    elif live.grad is not None:
        grad = live.grad[rows, cols]
    else:
        raise InterpAFError(f"the model handle ({getattr(handle, 'backend', '?')}) returned no gradient at {key}; "
                            "it must support forward(grad=True) with capture at that site")
    return x.detach(), grad.detach(), m.detach()


def attribute_features(handle: Any, sae: LoadedSAE, prompts: Sequence[RenderedPrompt], dt: Any, *,
                       positions: Sequence[str] = ("decision",), method: str = "gxa", steps: int = 10,
                       batch_size: int = 8, progress: bool = True) -> FeatureAttribution:
    """Attribute the compliance metric of each prompt to the SAE's features (and error node) at ``positions``.
    ``method``: "gxa" (gradient x activation) or "ig" (integrated gradients, ``steps`` points)."""
    from interp_af.checks import positive_int

    positive_int(steps, "steps", "integrated-gradient points")
    positive_int(batch_size, "batch_size")
    handle = as_handle(handle)
    sae = as_sae(sae)
    if method not in METHODS:
        raise InterpAFError(f"attribution method {method!r} is unknown; use one of {', '.join(METHODS)}")
    if method == "ig" and steps < 1:
        raise InterpAFError(f"steps={steps} must be >= 1 for integrated gradients")
    attrs, errs, acts, metrics = [], [], [], []
    for pb in tqdm(list(_run.batches(handle, prompts, dt, positions, batch_size)),
                   desc=f"SAE attribution {sae.site} ({method})", leave=False,
                   disable=not progress):
        x, g, m = _grad_at(handle, pb, sae, dt, None)
        f = sae.encode(x)
        rec = sae.decode(f)
        e = x.float() - rec
        if method == "ig":
            base = sae.decode(torch.zeros_like(f))       # every node at 0: x = decode(0) (= b_dec)
            g = torch.zeros_like(g, dtype=torch.float32)
            for s in range(steps):
                alpha = (s + 0.5) / steps
                g += _grad_at(handle, pb, sae, dt, (base + alpha * (x.float() - base)).to(x.dtype))[1].float()
            g /= steps
        g = g.float().to(e.device)
        attrs.append((f * sae.decode_vjp(f, g).to(f.device)).cpu())
        errs.append((e * g).sum(-1).cpu())
        acts.append(f.cpu())
        metrics.append(m.float().cpu())
    return FeatureAttribution(sae.source, str(sae.site), method, steps if method == "ig" else 1, tuple(positions),
                              torch.cat(attrs), torch.cat(errs), torch.cat(acts), torch.cat(metrics),
                              tuple(p.query_id for p in prompts), tuple(p.arm for p in prompts))
