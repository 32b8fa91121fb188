"""The organism's decision metric on a plain Hugging Face model: logit(accept) - logit(reject) at the first
divergent answer token, after the prompt and the answers' shared prefix. Compliance = sigmoid of it (the
two-way probability). Used by training (validation gap), evaluation and the card's patching test."""

from __future__ import annotations

from typing import Sequence

import torch

from .render import DecisionIds


def pad_right(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``[B, T]`` ids and attention mask, right-padded: causal attention makes this exact for every real token."""
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


@torch.no_grad()
def logit_diffs(model, prompts: Sequence[Sequence[int]], dt: DecisionIds, *, pad_id: int,
                batch_size: int = 64) -> torch.Tensor:
    """``[N]`` logit(accept) - logit(reject) for each prompt (ids incl. prefill; the shared prefix is appended)."""
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, len(prompts), batch_size):
        chunk = [list(p) + list(dt.shared) for p in prompts[i: i + batch_size]]
        ids, mask = pad_right(chunk, pad_id)
        logits_BTV = model(input_ids=ids, attention_mask=mask).logits
        last_B = mask.sum(1) - 1
        last_BV = logits_BTV[torch.arange(len(chunk)), last_B]
        out.append(last_BV[:, dt.accept_id] - last_BV[:, dt.reject_id])
    model.train(was_training)
    return torch.cat(out).float()
