"""Left-padded batches of prompts of different lengths.

Prompts are stored as token ids (never re-tokenised strings). A batch pads them on the left so that every
prompt's last token sits in the last column, which is where the compliance decision is read. Positions are
always given in *prompt coordinates* (index into the un-padded prompt); ``offsets`` converts them to columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from jaxtyping import Int
from torch import Tensor


@dataclass(frozen=True)
class Batch:
    """A left-padded batch: prompt index ``i`` of row ``b`` lives at column ``i + offsets[b]``."""

    input_ids: Int[Tensor, "batch pos"]
    attention_mask: Int[Tensor, "batch pos"]
    offsets: Int[Tensor, " batch"]
    lengths: Int[Tensor, " batch"]

    def columns(self, positions: Int[Tensor, "batch p"]) -> Int[Tensor, "batch p"]:
        """Prompt coordinates -> padded column indices."""
        return positions + self.offsets[:, None]

    def to(self, device: torch.device | str) -> "Batch":
        return Batch(*(t.to(device) for t in (self.input_ids, self.attention_mask, self.offsets, self.lengths)))


def pad_id_of(tokenizer: object) -> int:
    """The id used for left padding: the pad token, else EOS, else 0 (padded columns are masked out, so the
    choice never changes a result; it only has to be a valid id)."""
    for attr in ("pad_token_id", "eos_token_id"):
        value = getattr(tokenizer, attr, None)
        if value is not None:
            return int(value)
    return 0


def collate(prompts: Sequence[Sequence[int]], pad_id: int) -> Batch:
    """Left-pad ``prompts`` (lists of token ids) into one :class:`Batch`."""
    lengths = torch.tensor([len(p) for p in prompts], dtype=torch.long)
    width = int(lengths.max())
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for b, p in enumerate(prompts):
        ids[b, width - len(p):] = torch.as_tensor(list(p), dtype=torch.long)
        mask[b, width - len(p):] = 1
    return Batch(ids, mask, width - lengths, lengths)
