"""Shared plumbing of the SAE analyses: batches of prompts with the compliance metric, named positions, and the
SAE's own activation read through the model handle.

Every SAE analysis feeds the *metric inputs* of a prompt (the prompt plus the tokens that the accept and reject
completions share, ``interp_af.models.metric.metric_inputs``) and reads the logit difference at the last
position. Named positions ("cue", "end_user", "decision", ...) are prompt coordinates, valid unchanged in the
metric inputs because the shared prefix only appends tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp_af.errors import InterpAFError
from interp_af.models.batch import Batch, collate, pad_id_of
from interp_af.models.metric import logit_diff  # noqa: F401 - the one metric, re-exported for the SAE modules
from interp_af.models.interventions import Intervention
from interp_af.models.sites import SiteKey
from interp_af.setting.types import RenderedPrompt


def metric_ids(prompt: RenderedPrompt, dt: Any) -> list[int]:
    """Prompt + shared prefix of the two completions (``interp_af.models.metric.metric_inputs``)."""
    from interp_af.models.metric import metric_inputs

    return metric_inputs(prompt.input_ids, dt)


def pad_id(handle: Any) -> int:
    return pad_id_of(handle.tokenizer)


METRIC_POSITION = "metric"


def named_positions(prompts: Sequence[RenderedPrompt], names: Sequence[str], dt: Any = None) -> Int[Tensor, "n p"]:
    """``[n_prompts, len(names)]`` prompt-coordinate indices; a name a prompt lacks -> one-line error.

    Names follow :mod:`interp_af.setting.positions` (a named position, an offset such as ``decision-1``, or
    ``"metric"``: where the metric is read, the last token of the metric inputs, ``decision`` + the shared
    completion prefix, e.g. the ``<`` both tags start with)."""
    from interp_af.setting.positions import index

    out = torch.empty((len(prompts), len(names)), dtype=torch.long)
    shared = len(dt.shared) if dt is not None else 0
    for i, p in enumerate(prompts):
        n = len(p.input_ids) + shared
        for j, name in enumerate(names):
            k = index(name, p.positions, n, metric=n - 1)
            if k < 0:
                raise InterpAFError(
                    f"prompt {p.query_id or i} ({p.arm}) has no named position {name!r} (it has "
                    f"{', '.join(p.positions)}, and 'metric'); choose positions every prompt has"
                )
            out[i, j] = k
    return out


@dataclass(frozen=True)
class PromptBatch:
    """One batch of prompts: their indices into the prompt list, the left-padded metric inputs, and the named
    positions ``[B, P]`` in prompt coordinates."""

    index: Int[Tensor, " batch"]
    batch: Batch
    positions: Int[Tensor, "batch p"]


def batches(handle: Any, prompts: Sequence[RenderedPrompt], dt: Any, names: Sequence[str],
            batch_size: int) -> Iterator[PromptBatch]:
    if batch_size < 1:
        raise InterpAFError(f"batch_size={batch_size} must be >= 1")
    pos_all = named_positions(prompts, names, dt) if names else torch.zeros((len(prompts), 0), dtype=torch.long)
    for start in range(0, len(prompts), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(prompts)))
        chunk = [metric_ids(prompts[int(i)], dt) for i in idx]
        yield PromptBatch(idx, collate(chunk, pad_id(handle)).to(handle.device), pos_all[idx].to(handle.device))


def row_spans(batch: Batch, skip_first: int = 0) -> list[Int[Tensor, "1 len"]]:
    """Per row, every prompt position (minus the first ``skip_first``, e.g. BOS) as a ``[1, len]`` index tensor."""
    return [torch.arange(skip_first, int(n), device=batch.input_ids.device)[None] for n in batch.lengths]


def replace_rows(key: SiteKey, spans: Sequence[Tensor], values: Sequence[Tensor]) -> list[Intervention]:
    """One ``replace`` intervention per row (rows have different lengths, an intervention is rectangular)."""
    return [Intervention(key.site, key.layer, "replace", pos, val, rows=torch.tensor([b], device=pos.device))
            for b, (pos, val) in enumerate(zip(spans, values)) if pos.shape[1] > 0]


def gather_rows(x_BTD: Tensor, batch: Batch, spans: Sequence[Tensor]) -> list[Tensor]:
    """Padded ``[B, T, d]`` -> per row ``[1, len_b, d]`` at the prompt positions ``spans[b]``."""
    return [x_BTD[b, spans[b][0] + batch.offsets[b]][None] for b in range(len(spans))]


def arms_of(prompts: Sequence[RenderedPrompt], arms: tuple[str, str] | None) -> tuple[str, str]:
    """The two arms compared (first = the trained arm, e.g. free); default: the first two in prompt order."""
    seen: list[str] = []
    for p in prompts:
        if p.arm not in seen:
            seen.append(p.arm)
    if arms is None:
        if len(seen) < 2:
            raise InterpAFError(f"prompts hold only arm(s) {seen}; pass prompts of two arms (e.g. free and paid)")
        return seen[0], seen[1]
    missing = [a for a in arms if a not in seen]
    if missing:
        raise InterpAFError(f"arm(s) {missing} not among the prompts' arms {seen}; pass arms= that exist")
    return arms


def paired_gap(values: np.ndarray, arm: Sequence[str], qid: Sequence[str], arms: tuple[str, str],
               n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """mean(values | arm a) - mean(values | arm b) with a bootstrap interval that resamples *queries*
    (each query keeps both of its arms). Returns (gap, lo, hi) for a 95% interval."""
    from interp_af.checks import positive_int

    positive_int(n_boot, "n_boot", "bootstrap resamples")
    by_q: dict[str, list[list[float]]] = {}
    for v, a, q in zip(values, arm, qid):
        if a in arms:
            by_q.setdefault(q, [[], []])[arms.index(a)].append(float(v))
    pairs = np.array([[np.mean(a), np.mean(b)] for a, b in by_q.values() if a and b])
    if len(pairs) == 0:
        raise InterpAFError(f"no query has prompts in both arms {arms}; pair the prompts by query_id")
    diffs = pairs[:, 0] - pairs[:, 1]
    rng = np.random.default_rng(seed)
    boot = diffs[rng.integers(0, len(diffs), size=(n_boot, len(diffs)))].mean(1)
    return float(diffs.mean()), float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))
