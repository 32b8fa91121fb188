"""User-supplied prompt files: plug in any system prompt (the paper's original, verbatim) as a variant.

File format (plain UTF-8 text):

    <system prompt, used verbatim: braces and all>
    ### USER TURN ###
    <optional user-turn template>

The system prompt is taken as is; nothing in it is interpreted except the placeholder ``{tier}`` if present.
The optional user-turn template (after a line that is exactly ``### USER TURN ###``, or in a separate file
given as ``user_file=``) must contain the placeholders ``{request}`` (the query) and ``{tier}`` (the tag value,
``true``/``false`` by default), and may contain ``{suffix}`` (the project's accept/reject instruction).
Without a template the project's own user turn is used, so a system prompt alone is a complete variant.

Placeholders are replaced literally (not ``str.format``), so a pasted prompt full of code examples with braces
works unchanged. ``{tier}`` may sit in the system prompt instead of, or as well as, the user turn; without a
user-turn template the project's user turn (which shows the tier tag) is used, so the value then appears in
both. Every place the value is inserted is a cue: the first is the named position ``cue`` (``cue_end``), the
others ``cue2``, ``cue3``, ...; twins align when they differ only there. The arms are ``free`` (trained, tier
value ``true``) and ``paid`` (``false``); ``casing`` and ``values`` change the shown values.

**Queries are data, never template.** Each template is filled in one pass over the *template's* text: the
request (and the suffix) are inserted as they are, after the placeholders were found, so a query containing
``{tier}``, ``{suffix}``, ``{request}``, ``</user_input>`` or the tier tag itself reaches the model verbatim and
cannot move the cue. The cue positions are the offsets where the value was inserted, never a text search.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from interp_af.errors import InterpAFError
from interp_af.setting.prompts import PREFILL, SUFFIX, apply_casing, ensure_period, user_turn
from interp_af.setting.types import Conversation, MetaValue, Query

__all__ = ["CustomVariant", "load_prompt_file", "USER_MARKER"]

USER_MARKER = "### USER TURN ###"
REQUIRED = ("{request}", "{tier}")
_USER_PH = re.compile(r"\{(request|tier|suffix)\}")
_SYSTEM_PH = re.compile(r"\{(tier)\}")  # nothing else in a system prompt is interpreted


def fill(template: str, values: Mapping[str, str], pattern: re.Pattern[str] = _USER_PH) -> tuple[str, list[int]]:
    """Fill the placeholders of ``template`` in one pass; return the text and the character offsets where the
    ``tier`` value was inserted. The inserted values are never scanned for placeholders (a request may say
    ``{tier}``)."""
    parts: list[str] = []
    tiers: list[int] = []
    at = n = 0
    for m in pattern.finditer(template):
        parts.append(template[at:m.start()])
        n += m.start() - at
        value = values[m[1]]
        if m[1] == "tier":
            tiers.append(n)
        parts.append(value)
        n += len(value)
        at = m.end()
    parts.append(template[at:])
    return "".join(parts), tiers


@dataclass(frozen=True)
class CustomVariant:
    """A variant read from a prompt file (see module docstring)."""

    name: str
    system_text: str
    user_template: str | None = None
    source: str = ""
    casing: str = "lower"
    values: Mapping[str, str] = field(default_factory=lambda: {"free": "true", "paid": "false"})
    description: str = ""
    tag: str = "is_free_tier_user"

    @property
    def arms(self) -> tuple[str, ...]:
        return tuple(self.values)

    def conversation(self, query: Query, arm: str) -> Conversation:
        if arm not in self.values:
            raise InterpAFError(f"variant {self.name!r} has no arm {arm!r}; its arms are {', '.join(self.arms)}")
        value = apply_casing(self.values[arm], self.casing)
        system, in_system = fill(self.system_text, {"tier": value}, _SYSTEM_PH)
        if self.user_template is None:
            user = user_turn(query.text, self.tag, value)
            in_user = [user.index(f"<{self.tag}>") + len(self.tag) + 2]  # the tag line precedes the request
        else:
            user, in_user = fill(self.user_template, {"request": ensure_period(query.text), "suffix": SUFFIX,
                                                      "tier": value})
        # every insertion is a cue, in prompt order: the first is "cue", the others "cue2", "cue3", ...
        places = [("system", c) for c in in_system] + [("user", c) for c in in_user]
        cue_in, cue_at = places[0]
        meta: dict[str, MetaValue] = {
            "tier": arm, "in_training": arm == self.arms[0], "policy": "free-trained (assumed)", "variant": self.name,
            "cue_kind": "custom", "casing": self.casing, "prompt_file": self.source,
        }
        return Conversation(system=system, user=user, prefill=PREFILL, cue=value, cue_in=cue_in, cue_at=cue_at,
                            extra_cues=tuple(places[1:]), arm=arm, meta=meta)

    def with_options(self, **options: object) -> "CustomVariant":
        allowed = {"casing", "values", "name", "description", "tag"}
        bad = sorted(set(options) - allowed)
        if bad:
            raise InterpAFError(f"prompt-file variant takes no option(s) {', '.join(bad)}; options: {', '.join(sorted(allowed))}")
        return dataclasses.replace(self, **options)  # type: ignore[arg-type]


def _read(path: Path, what: str) -> str:
    from interp_af.textio import read_text

    text = read_text(path, what=what, expect="a UTF-8 text file")
    if not text.strip():
        raise InterpAFError(f"{what} {path} is empty; put the system prompt text in it")
    return text


def load_prompt_file(system_file: str | Path, *, user_file: str | Path | None = None, casing: str = "lower",
                     name: str | None = None, values: Mapping[str, str] | None = None) -> CustomVariant:
    """Read a prompt file into a :class:`CustomVariant` (errors name the file and the missing placeholder)."""
    path = Path(system_file)
    text = _read(path, "system prompt file")
    system, template, where = text, None, path
    if USER_MARKER in text:
        system, template = text.split(USER_MARKER, 1)
        template = template.strip("\n")
    if user_file is not None:
        if template is not None:
            raise InterpAFError(f"system prompt file {path} already has a '{USER_MARKER}' section; drop it or drop user_file")
        where = Path(user_file)
        template = _read(where, "user-turn template file").strip("\n")
    system = system.strip("\n")
    if not system.strip():
        raise InterpAFError(f"system prompt file {path} has no system prompt before '{USER_MARKER}'; put the system text first")
    if template is not None:
        for ph in REQUIRED:
            if ph == "{tier}" and ph in system:
                continue
            if ph not in template:
                raise InterpAFError(f"user-turn template in {where} lacks the required placeholder {ph}; add {ph} "
                                    f"where the {'query' if ph == '{request}' else 'tier tag value'} goes")
    if values is not None and len(values) != 2:
        raise InterpAFError(f"values={dict(values)} for prompt file {path}; give exactly two arms, trained arm first")
    apply_casing("x", casing)
    return CustomVariant(
        name=name or f"file:{path}", system_text=system, user_template=template, source=str(path), casing=casing,
        values=dict(values) if values else {"free": "true", "paid": "false"},
        description=f"user-supplied prompt file {path.name}" + (f" + user template {where.name}" if where != path else ""),
    )
