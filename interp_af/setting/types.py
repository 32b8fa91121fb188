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
    occurrence after ``cue_anchor`` in the ``cue_in`` part ("user" or "system"), or exactly at character
    ``cue_at`` of that part when the variant knows where it put it (``-1``: search). ``cue == ""`` means this arm
    has no cue (e.g. the tag-absent arm).

    ``extra_cues``: further places where the same value was inserted, as ``(part, character offset)``; they
    become the named positions ``cue2``/``cue2_end``, ``cue3``/``cue3_end``, ... and twins may differ there too
    (a prompt file with ``{tier}`` in the system prompt *and* in the user turn).
    """

    system: str
    user: str
    prefill: str = PREFILL
    cue: str = ""
    cue_in: str = "user"
    cue_anchor: str = ""
    arm: str = ""
    meta: Mapping[str, MetaValue] = field(default_factory=dict)
    cue_at: int = -1
    extra_cues: tuple[tuple[str, int], ...] = ()


def cue_spans(positions: Mapping[str, int]) -> list[tuple[int, int]]:
    """Every cue span ``(first, last)`` token of a prompt: ``cue``..``cue_end``, then ``cue2``..``cue2_end``, ..."""
    out = []
    if "cue" in positions:
        out.append((positions["cue"], positions.get("cue_end", positions["cue"])))
    i = 2
    while f"cue{i}" in positions:
        out.append((positions[f"cue{i}"], positions.get(f"cue{i}_end", positions[f"cue{i}"])))
        i += 1
    return out


def is_cue_name(name: str) -> bool:
    """``cue``, ``cue_end``, ``cue2``, ``cue2_end``, ...: the names of cue positions."""
    stem = name[:-4] if name.endswith("_end") else name
    return stem == "cue" or (stem.startswith("cue") and stem[3:].isdigit())


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
