"""What a feature reads: its top-activating tokens and prompts.

A feature id means nothing until one sees where it fires. :func:`feature_context` runs the studied prompts once
(stopping after the SAE's layer), encodes every token, and keeps, per feature, the ``k`` strongest
(prompt, position) pairs with the token and a few tokens of context (the token itself in ``[[ ]]``). From a
capture on disk, :func:`top_prompts_from_capture` ranks prompts by a feature's activation at one named position.
``short_context`` makes the one-line label used in figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import torch
from tqdm import tqdm

from interp_af.models.wrap import as_handle
from interp_af.analysis.sae.load import as_sae
from interp_af.errors import InterpAFError
from interp_af.setting.types import RenderedPrompt

from . import _run
from .load import LoadedSAE


@dataclass(frozen=True)
class FeatureContext:
    """Top activations per feature: one row per (feature, rank) with the prompt, position, token and context."""

    sae: str
    table: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    @classmethod
    def load(cls, path: str | Path, sae: str = "") -> "FeatureContext":
        """Read back the ``context.csv`` that the SAE study writes (``to_frame().to_csv(...)``)."""
        path = Path(path)
        if not path.is_file():
            raise InterpAFError(f"no feature contexts at {path}; pass the context.csv of an SAE study folder")
        # empty strings come back from CSV as NaN, which is truthy: restore them so a token with no named
        # position does not get an "@nan" label
        table = pd.read_csv(path, keep_default_na=False, dtype={"named": str, "token": str, "context": str})
        return cls(sae, table)

    def short_context(self, feature: int, width: int = 40) -> str:
        """One line for a figure: the top token in its context, and the named position it sits at (if any)."""
        rows = self.table[self.table["feature"] == feature]
        if rows.empty:
            return "(never active)"
        top = rows.iloc[0]
        label = f"{top['context']}" + (f" @{top['named']}" if top["named"] else "")
        return label if len(label) <= width else "..." + label[-(width - 3):]


def _token_strings(tok: Any, ids: Sequence[int]) -> list[str]:
    return [tok.decode([int(i)]) for i in ids]


@torch.no_grad()
def feature_context(handle: Any, sae: LoadedSAE, prompts: Sequence[RenderedPrompt], features: Sequence[int], *,
                    dt: Any = None, k: int = 5, window: int = 6, batch_size: int = 16,
                    skip_first: int = 1, dedupe: bool = True, progress: bool = True) -> FeatureContext:
    """Top-``k`` (prompt, position) activations of each of ``features`` over every token of ``prompts``.
    ``dedupe``: keep one row per distinct context string (twins share their system prompt token for token, so
    without it the top rows are often one token of one sentence repeated in every prompt)."""
    from interp_af.checks import nonneg_int, positive_int

    positive_int(k, "k")
    nonneg_int(window, "window")
    positive_int(batch_size, "batch_size")
    nonneg_int(skip_first, "skip_first")
    handle = as_handle(handle)
    sae = as_sae(sae)
    feats = torch.as_tensor(list(features), dtype=torch.long)
    if feats.numel() and (int(feats.min()) < 0 or int(feats.max()) >= sae.d_sae):
        raise InterpAFError(f"feature ids outside 0..{sae.d_sae - 1} of SAE {sae.source}; pass valid ids")
    empty = type("NoShared", (), {"shared": ()})()
    key = sae.site
    keep = k * 8 if dedupe else k
    best_val = torch.full((len(feats), keep), -float("inf"))
    best_where = torch.full((len(feats), keep, 2), -1, dtype=torch.long)
    for pb in tqdm(list(_run.batches(handle, prompts, dt or empty, (), batch_size)), desc=f"SAE context {key}",
                   leave=False, disable=not progress):
        out = handle.forward(pb.batch, capture=(key,), stop_at_layer=key.layer + 1)
        spans = _run.row_spans(pb.batch, skip_first)
        for b, x in enumerate(_run.gather_rows(out.acts[key], pb.batch, spans)):
            f = sae.encode(x[0])[:, feats.to(x.device)].T.cpu()   # [n_feats, len]
            pos = spans[b][0].cpu()
            where = torch.stack([torch.full_like(pos, int(pb.index[b])), pos], -1)   # [len, 2]
            vals = torch.cat([best_val, f], 1)
            cand = torch.cat([best_where, where[None].expand(len(feats), -1, -1)], 1)
            top = vals.topk(min(keep, vals.shape[1]), dim=1)
            best_val = top.values
            best_where = torch.gather(cand, 1, top.indices[..., None].expand(-1, -1, 2))
    tok = handle.tokenizer
    rows = []
    for i, feat in enumerate(feats.tolist()):
        seen: set[str] = set()
        for r in range(best_val.shape[1]):
            v, (pi, t) = float(best_val[i, r]), best_where[i, r].tolist()
            if pi < 0 or v <= 0 or len(seen) >= k:
                continue
            p = prompts[pi]
            ids = (list(p.input_ids) + list(dt.shared if dt is not None else ()))
            toks = _token_strings(tok, ids[max(0, t - window):t + 2])
            mark = t - max(0, t - window)
            ctx = "".join(toks[:mark]) + "[[" + toks[mark] + "]]" + "".join(toks[mark + 1:])
            named = ",".join(n for n, j in p.positions.items() if j == t)
            if dedupe and ctx in seen:
                continue
            seen.add(ctx)
            rows.append({"feature": feat, "rank": len(seen) - 1, "activation": v, "prompt": pi, "query_id": p.query_id,
                         "arm": p.arm, "position": t, "named": named, "token": toks[mark],
                         "context": ctx.replace("\n", "\\n")})
    cols = ["feature", "rank", "activation", "prompt", "query_id", "arm", "position", "named", "token", "context"]
    return FeatureContext(sae.source, pd.DataFrame(rows, columns=cols))


@torch.no_grad()
def top_prompts_from_capture(capture: Any, sae: LoadedSAE, feature: int, position: str = "decision",
                             k: int = 10) -> pd.DataFrame:
    """Prompts of a capture ranked by ``feature``'s activation at the named ``position``, with their metadata."""
    from interp_af.checks import positive_int

    positive_int(k, "k")
    from .features import encode_capture

    fa = encode_capture(capture, sae, [position])
    if not 0 <= feature < sae.d_sae:
        raise InterpAFError(f"feature {feature} outside 0..{sae.d_sae - 1} of SAE {sae.source}")
    vals = fa.at(position)[:, feature]
    meta = capture.meta().copy()
    meta.insert(0, "activation", vals.numpy())
    meta.insert(0, "feature", feature)
    return meta.sort_values("activation", ascending=False).head(k).reset_index(drop=True)
