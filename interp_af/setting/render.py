"""Render a conversation into token ids through the tokenizer's own chat template, with named positions.

Three traps decide how this is written:

1. **Doubled BOS.** Llama 3 and Gemma templates write the BOS token into the text, and their tokenizers add
   another on encode. The text is therefore always encoded with ``add_special_tokens=False``; a BOS id is
   prepended only when the template did not write one and the tokenizer's own encode would have added it.
2. **The prefill is part of the assistant turn.** The template is applied with ``add_generation_prompt=True``
   and the prefill (``<OUTPUT>``) is appended to that text, so the model's next token is the first token of its
   answer. (Putting the prefill in an assistant *message* would close the turn with an end-of-turn token.)
3. **Positions come from characters, not from re-tokenising pieces.** BPE merges across piece boundaries,
   so the prompt is tokenised once and each named position is the token whose character span
   (``return_offsets_mapping``) covers a known character: the cue's first and last character, the last
   character of the system text and of the user's content, the first character of the prefill.

Templates without a system role (Gemma) fold the system text into the first user turn; when a template
rejects the system role outright, the renderer folds it itself. ``end_system`` is then the last token of
the system text inside that user turn. Tokenizers without a chat template use :data:`PLAIN`: GPT-2, and base
models such as Gemma-3-270M (packaged as ``gemma-3-270m``). For a base model that is a choice, not a fallback:
it was pre-trained on text, turn markers (``<start_of_turn>``) only acquire their meaning in instruction
tuning, and SAEs released for base models were trained on pre-training text, so a plain transcript is the
in-distribution way to pose the setting. ``template="gemma"`` renders Gemma-IT's turn format instead.

Named positions: ``cue``, ``cue_end`` (absent when the arm has no cue), ``end_system``, ``start_user``,
``end_user`` (last token of the user's content), ``prefill`` (first prefill token), ``decision`` (last token).
"""

from __future__ import annotations

import bisect
from typing import Any, Mapping

from interp_af.errors import InterpAFError
from interp_af.setting.types import Conversation, MetaValue, RenderedPrompt

__all__ = ["render", "chat_text", "generation_prompt", "adds_bos", "PLAIN", "special_strings", "check_query_text"]

# plain format for models without a chat template: {system}\n\nUser:\n{user}\n\nAssistant:\n{prefill}
# (newlines, not spaces, before the user text and the prefill: byte-level BPE would merge " <" into one token)
PLAIN = {"user": "User:\n", "assistant": "\n\nAssistant:\n", "system_sep": "\n\n"}


def _template_source(tokenizer: Any, template: str | None) -> str | None:
    """None -> the tokenizer's own template (None if it has none); "plain" -> None; a known style name (llama3,
    chatml, gemma) -> that test template; anything else is taken as a Jinja template."""
    if template is None:
        return getattr(tokenizer, "chat_template", None) or None
    if template == "plain":
        return None
    from interp_af.testing.tiny import CHAT_TEMPLATES

    return CHAT_TEMPLATES.get(template, template)


def _apply(tokenizer: Any, messages: list[dict[str, str]], source: str, gen: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen, chat_template=source)


def chat_text(tokenizer: Any, system: str, user: str, template: str | None = None, *,
              with_generation_prompt: bool = True) -> tuple[str, str]:
    """The prompt text up to (not including) the prefill, and the generation prompt it ends with (computed only
    when ``with_generation_prompt``: it costs a second template pass)."""
    source = _template_source(tokenizer, template)
    if source is None:
        head = f"{system}{PLAIN['system_sep']}" if system else ""
        return f"{head}{PLAIN['user']}{user}{PLAIN['assistant']}", PLAIN["assistant"]
    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
    try:
        with_gen = _apply(tokenizer, msgs, source, True)
    except Exception:  # templates without a system role raise (jinja's raise_exception); fold it ourselves
        if not system:
            raise
        msgs = [{"role": "user", "content": f"{system}\n\n{user}"}]
        with_gen = _apply(tokenizer, msgs, source, True)
    if not with_generation_prompt:
        return with_gen, ""
    without = _apply(tokenizer, msgs, source, False)
    gen = with_gen[len(without):] if with_gen.startswith(without) else ""
    return with_gen, gen


def generation_prompt(tokenizer: Any, template: str | None = None) -> str:
    """What the template appends for ``add_generation_prompt=True`` (e.g. ``<start_of_turn>model\\n``)."""
    return chat_text(tokenizer, "", "x", template)[1]


def special_strings(tokenizer: Any) -> tuple[str, ...]:
    """The texts of the tokenizer's special tokens (``<|eot_id|>``, ``<|im_end|>``, ...), longest first."""
    toks = {str(t) for t in (getattr(tokenizer, "all_special_tokens", None) or [])}
    for t in (getattr(tokenizer, "added_tokens_decoder", None) or {}).values():
        if getattr(t, "special", False):
            toks.add(str(getattr(t, "content", "")))
    return tuple(sorted((t for t in toks if t), key=len, reverse=True))


def check_query_text(query: Any, specials: tuple[str, ...]) -> None:
    """Refuse a request whose text holds a special token's text: the tokenizer would read it as a control token
    (an end of turn, a new system turn), so the request would rewrite the chat structure instead of being data."""
    hit = next((s for s in specials if s in query.text), None)
    if hit is not None:
        raise InterpAFError(f"query {query.id!r} contains the tokenizer's special token {hit!r}, which would be read "
                            f"as chat structure, not as text; remove it from the query file")


def adds_bos(tokenizer: Any) -> bool:
    """Does the tokenizer's own encode prepend BOS? (Llama 3, Gemma: yes; Qwen, GPT-2: no.)"""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return False
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return bool(ids) and ids[0] == bos


class _Spans:
    """Character -> token index lookup over an offsets mapping (special tokens have empty spans)."""

    def __init__(self, offsets: list[tuple[int, int]]):
        self.items = [(s, e, i) for i, (s, e) in enumerate(offsets) if e > s]
        self.starts = [s for s, _, _ in self.items]

    def token_at(self, char: int) -> int:
        k = bisect.bisect_right(self.starts, char) - 1
        if k < 0 or not (self.items[k][0] <= char < self.items[k][1]):
            raise InterpAFError(f"no token covers character {char} of the rendered prompt; the tokenizer's offsets "
                                f"mapping is unusable: use a fast tokenizer (use_fast=True)")
        return self.items[k][2]


def _find(text: str, part: str, start: int, what: str, tokenizer: Any) -> int:
    idx = text.find(part, start)
    if idx < 0:
        name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
        raise InterpAFError(f"the chat template of tokenizer {name!r} changes the {what} text, so named positions "
                            f"cannot be located; pass template='plain' or a template that keeps message text verbatim")
    return idx


def render(tokenizer: Any, conv: Conversation, *, query_id: str = "", variant: str = "", template: str | None = None,
           extra_meta: Mapping[str, MetaValue] | None = None, bos: bool | None = None) -> RenderedPrompt:
    """Render one conversation to a :class:`RenderedPrompt` (ids incl. BOS exactly once and the prefill).

    ``template``: None = the tokenizer's chat template (plain format if it has none), ``"plain"``, a style name
    (``llama3``, ``chatml``, ``gemma``) or a Jinja string. ``bos``: None = follow the tokenizer, True/False force.
    """
    if getattr(tokenizer, "is_fast", True) is False:
        raise InterpAFError(f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} is a slow tokenizer without "
                            f"offsets; load it with AutoTokenizer.from_pretrained(..., use_fast=True)")
    head, _ = chat_text(tokenizer, conv.system, conv.user, template, with_generation_prompt=False)
    full = head + conv.prefill
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = list(enc["input_ids"])
    offsets: list[tuple[int, int]] = [tuple(o) for o in enc["offset_mapping"]]
    bos_tok, bos_id = getattr(tokenizer, "bos_token", None), getattr(tokenizer, "bos_token_id", None)
    text_has_bos = bool(bos_tok) and full.startswith(bos_tok)
    want_bos = adds_bos(tokenizer) if bos is None else bos
    text = full
    if want_bos and not text_has_bos and bos_id is not None:
        ids, offsets, text = [bos_id, *ids], [(0, 0), *offsets], bos_tok + full
    if bos_id is not None and len(ids) > 1 and ids[0] == ids[1] == bos_id:
        raise InterpAFError(f"rendered prompt starts with two BOS tokens; the chat template writes BOS twice: pass a "
                            f"template without the extra {bos_tok!r}")
    spans = _Spans(offsets)

    sys_at = _find(head, conv.system, 0, "system", tokenizer) if conv.system else -1
    user_at = _find(head, conv.user, sys_at + len(conv.system) if conv.system else 0, "user", tokenizer)
    pos: dict[str, int] = {}
    if conv.cue:
        places = {"system": (sys_at, conv.system), "user": (user_at, conv.user)}
        if conv.cue_in not in places:
            raise InterpAFError(f"Conversation.cue_in={conv.cue_in!r}; use 'user' or 'system'")
        base, part = places[conv.cue_in]
        if conv.cue_at >= 0:  # the variant knows where it inserted the value: no search that a query could fool
            c = conv.cue_at if part[conv.cue_at:conv.cue_at + len(conv.cue)] == conv.cue else -1
        else:
            a = part.find(conv.cue_anchor) if conv.cue_anchor else 0
            c = part.find(conv.cue, a + len(conv.cue_anchor)) if a >= 0 else -1
        if c < 0:
            raise InterpAFError(f"cue {conv.cue!r} (after {conv.cue_anchor!r}) not found in the {conv.cue_in} text of "
                                f"arm {conv.arm!r}; the variant must put its cue in that text")
        pos["cue"] = spans.token_at(base + c)
        pos["cue_end"] = spans.token_at(base + c + len(conv.cue) - 1)
        for i, (where, at) in enumerate(conv.extra_cues, start=2):
            if where not in places or places[where][1][at:at + len(conv.cue)] != conv.cue or at < 0:
                raise InterpAFError(f"extra cue {i} of arm {conv.arm!r} ({where!r} at character {at}) does not hold "
                                    f"{conv.cue!r}; the variant's extra_cues must point at the inserted value")
            b = places[where][0]
            pos[f"cue{i}"] = spans.token_at(b + at)
            pos[f"cue{i}_end"] = spans.token_at(b + at + len(conv.cue) - 1)
    pos["start_user"] = spans.token_at(user_at)
    pos["end_system"] = spans.token_at(sys_at + len(conv.system) - 1) if conv.system else max(pos["start_user"] - 1, 0)
    pos["end_user"] = spans.token_at(user_at + len(conv.user) - 1)
    if conv.prefill:
        pos["prefill"] = spans.token_at(len(head))
    pos["decision"] = len(ids) - 1
    meta = {**dict(conv.meta), **dict(extra_meta or {})}
    return RenderedPrompt(input_ids=tuple(ids), text=text, positions=pos, query_id=query_id,
                          arm=conv.arm, variant=variant, meta=meta)
