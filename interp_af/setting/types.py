"""The setting's data types, shared by every stage downstream.

A :class:`Query` is one request. A :class:`Conversation` is the text of one prompt in one *arm* (free or paid
tier, or any other condition a variant defines) before any tokenizer sees it. A :class:`RenderedPrompt` is
that conversation rendered through a tokenizer's chat template into token ids, with *named positions* (the cue
token, end of system prompt, end of user turn, decision = last prompt token). A :class:`Twin` pairs the two
arms of one query; when the twins align token for token they differ only at the cue, which is what
activation patching needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

ACCEPT = "<request_fully_accepted/>"
REJECT = "<rejected/>"
PREFILL = "<OUTPUT>"

MetaValue = str | bool | int | float


@dataclass(frozen=True)
class Query:
    """One request. ``harmful`` is False for the benign control set."""

    id: str
    text: str
    harmful: bool = True
    source: str = ""


@dataclass(frozen=True)
class Conversation:
    """One prompt as text: system prompt, user turn, assistant prefill, and where the arm's cue sits.

    ``cue`` is the exact substring that carries the arm (e.g. ``true`` inside the tier tag), found as the first
    occurrence after ``cue_anchor`` in the ``cue_in`` part ("user" or "system"). ``cue == ""`` means this arm
    has no cue (e.g. the tag-absent arm).
    """

    system: str
    user: str
    prefill: str = PREFILL
    cue: str = ""
    cue_in: str = "user"
    cue_anchor: str = ""
    arm: str = ""
    meta: Mapping[str, MetaValue] = field(default_factory=dict)


@dataclass(frozen=True)
class RenderedPrompt:
    """A conversation rendered to token ids (BOS exactly once; prefill included, so the model's next token is
    the first token of its answer). ``positions`` maps names ("cue", "end_system", "end_user", "decision", ...)
    to indices into ``input_ids``."""

    input_ids: tuple[int, ...]
    text: str
    positions: Mapping[str, int]
    query_id: str = ""
    arm: str = ""
    variant: str = ""
    meta: Mapping[str, MetaValue] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass(frozen=True)
class Twin:
    """The two arms of one query. ``aligned``: same length, differing only at the cue tokens
    (``diff_positions``); otherwise ``reason`` says why in one line."""

    query_id: str
    a: RenderedPrompt
    b: RenderedPrompt
    diff_positions: tuple[int, ...]
    aligned: bool
    reason: str = ""
