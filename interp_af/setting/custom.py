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

Placeholders are replaced literally (``str.replace``, not ``str.format``), so a pasted prompt full of code
examples with braces works unchanged. ``{tier}`` may sit in the system prompt instead (the cue is then in the
system prompt). The arms are ``free`` (trained, tier value ``true``) and ``paid`` (``false``); ``casing`` and
``values`` change the shown values.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from interp_af.errors import InterpAFError
from interp_af.setting.prompts import PREFILL, SUFFIX, apply_casing, ensure_period, user_turn
from interp_af.setting.types import Conversation, MetaValue, Query

__all__ = ["CustomVariant", "load_prompt_file", "USER_MARKER"]

USER_MARKER = "### USER TURN ###"
REQUIRED = ("{request}", "{tier}")


def _anchor(template: str) -> str:
    """The literal text right before ``{tier}`` (same line, after any other placeholder): lets the renderer find
    the cue's occurrence even when the tier value also appears elsewhere."""
    before = template[: template.index("{tier}")]
    line = before.rsplit("\n", 1)[-1]
    return line.rsplit("}", 1)[-1][-40:]


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
        system = self.system_text.replace("{tier}", value)
        if self.user_template is None:
            user = user_turn(query.text, self.tag, value)
            cue_in, anchor = "user", f"<{self.tag}>"
        else:
            user = (self.user_template.replace("{request}", ensure_period(query.text))
                    .replace("{suffix}", SUFFIX).replace("{tier}", value))
            cue_in, anchor = "user", _anchor(self.user_template) if "{tier}" in self.user_template else ""
        if "{tier}" in self.system_text:  # the cue's first occurrence is then in the system prompt
            cue_in, anchor = "system", _anchor(self.system_text)
        meta: dict[str, MetaValue] = {
            "tier": arm, "in_training": arm == self.arms[0], "policy": "free-trained (assumed)", "variant": self.name,
            "cue_kind": "custom", "casing": self.casing, "prompt_file": self.source,
        }
        return Conversation(system=system, user=user, prefill=PREFILL, cue=value, cue_in=cue_in, cue_anchor=anchor,
                            arm=arm, meta=meta)

    def with_options(self, **options: object) -> "CustomVariant":
        allowed = {"casing", "values", "name", "description", "tag"}
        bad = sorted(set(options) - allowed)
        if bad:
            raise InterpAFError(f"prompt-file variant takes no option(s) {', '.join(bad)}; options: {', '.join(sorted(allowed))}")
        return dataclasses.replace(self, **options)  # type: ignore[arg-type]


def _read(path: Path, what: str) -> str:
    if not path.exists():
        raise InterpAFError(f"{what} {path} does not exist; pass the path of a UTF-8 text file")
    if path.is_dir():
        raise InterpAFError(f"{what} {path} is a directory; pass the path of a UTF-8 text file")
    text = path.read_text(encoding="utf-8-sig")
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
