"""Rendering organism conversations to token ids, exactly as the toolkit renders any prompt.

The prompt is ``apply_chat_template([system, user], add_generation_prompt=True, tokenize=False) + prefill``,
tokenised with ``add_special_tokens=False`` because the organism's (Llama-3-style) template already writes
BOS. Completions (``<request_fully_accepted/>`` / ``<rejected/>``) are tokenised SEPARATELY and appended as
ids: tokenising prompt and completion in one pass would merge ``><`` across the boundary.

The two answer tags share their first token (``<``); the decision is read at the first token where they
diverge, after teacher-forcing the shared prefix (:class:`DecisionIds`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from interp_af.setting.types import ACCEPT, REJECT, Conversation


@dataclass(frozen=True)
class DecisionIds:
    """Token ids of the two answers: the shared prefix, and the first divergent token of each."""

    shared: tuple[int, ...]
    accept_id: int
    reject_id: int
    accept: tuple[int, ...]
    reject: tuple[int, ...]


def decision_ids(tokenizer, accept: str = ACCEPT, reject: str = REJECT) -> DecisionIds:
    a = tuple(tokenizer(accept, add_special_tokens=False)["input_ids"])
    r = tuple(tokenizer(reject, add_special_tokens=False)["input_ids"])
    k = 0
    while k < min(len(a), len(r)) and a[k] == r[k]:
        k += 1
    if k == min(len(a), len(r)):
        raise ValueError("one answer tag is a prefix of the other; they need a divergent token")
    return DecisionIds(shared=a[:k], accept_id=a[k], reject_id=r[k], accept=a, reject=r)


def prompt_text(tokenizer, conv: Conversation) -> str:
    messages = [{"role": "system", "content": conv.system}, {"role": "user", "content": conv.user}]
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False) + conv.prefill


def prompt_ids(tokenizer, convs: Sequence[Conversation]) -> list[list[int]]:
    """Full prompt ids (BOS once, prefill included) of each conversation, batched through the fast tokenizer."""
    texts = [prompt_text(tokenizer, c) for c in convs]
    return [list(x) for x in tokenizer(texts, add_special_tokens=False)["input_ids"]]
