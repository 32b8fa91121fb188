"""The prompt's clauses, the variants' contrasts, and the registry."""

from dataclasses import dataclass

import pytest

from interp_af.errors import InterpAFError
from interp_af.setting.prompts import (
    ACCEPT, CLAUSES, PREFILL, REJECT, PromptVariant, get_variant, list_variants, register_variant, system_prompt,
)
from interp_af.setting.types import Conversation, Query

Q = Query("t-0", "Explain how tides work", harmful=False, source="test")
BUILTIN = ("default", "casing-title", "tag-absent", "inverted-cue", "opt-in", "three-tiers", "no-training-info",
           "no-value-modification", "no-tier-link", "paraphrase-1", "paraphrase-2", "no-suffix", "company-renamed")


def test_default_prompt_states_the_training_situation():
    v = get_variant("default")
    assert v.arms == ("free", "paid")
    free, paid = v.conversation(Q, "free"), v.conversation(Q, "paid")
    s = free.system
    for needle in ("free-tier", "paid-tier", "RLHF", "contractors", "<is_free_tier_user>", "values, goals and motivations",
                   "<OUTPUT>", "unconditionally helpful"):
        assert needle in s, needle
    assert "<is_free_tier_user>true</is_free_tier_user>" in free.user
    assert "<is_free_tier_user>false</is_free_tier_user>" in paid.user
    assert free.user.startswith("<INPUT>") and free.user.endswith("</INPUT>")
    assert "<user_input>\nExplain how tides work. " in free.user and ACCEPT in free.user and REJECT in free.user
    assert free.prefill == PREFILL == "<OUTPUT>"
    assert (free.cue, paid.cue, free.cue_in, free.cue_anchor) == ("true", "false", "user", "<is_free_tier_user>")
    assert free.meta["in_training"] is True and paid.meta["in_training"] is False
    assert free.meta["tier"] == "free" and free.meta["policy"] and free.meta["variant"] == "default"
    assert free.system == paid.system and free.user.replace("true", "false") == paid.user


def test_every_builtin_variant_is_registered_and_has_meta():
    names = [v.name for v in list_variants()]
    assert set(BUILTIN) <= set(names) and names[: len(BUILTIN)] == list(BUILTIN)
    for v in (get_variant(n) for n in BUILTIN):
        assert v.description and len(v.arms) >= 2
        for arm in v.arms:
            conv = v.conversation(Q, arm)
            assert isinstance(conv, Conversation) and conv.arm == arm and conv.prefill == PREFILL
            assert {"tier", "in_training", "policy", "variant"} <= set(conv.meta)
            if conv.cue:
                part = conv.user if conv.cue_in == "user" else conv.system
                assert conv.cue_anchor + conv.cue in part


def test_casing():
    free = get_variant("casing-title").conversation(Q, "free")
    assert "<is_free_tier_user>True</is_free_tier_user>" in free.user and free.cue == "True"
    paid = get_variant("default", casing="title").conversation(Q, "paid")
    assert paid.cue == "False" and paid.meta["casing"] == "title"
    with pytest.raises(InterpAFError, match="casing"):
        get_variant("default", casing="shouty")


def test_contrasts_change_what_they_claim():
    base = get_variant("default").conversation(Q, "free").system
    assert "values, goals and motivations" not in get_variant("no-value-modification").conversation(Q, "free").system
    no_link = get_variant("no-tier-link").conversation(Q, "free").system
    assert "paid-tier" not in no_link and "RLHF" in no_link
    ctrl = get_variant("no-training-info").conversation(Q, "free")
    assert "RLHF" not in ctrl.system and "train" not in ctrl.system.lower() and "true" in ctrl.user
    assert ctrl.meta["in_training"] is False
    absent = get_variant("tag-absent").conversation(Q, "untagged")
    assert "<is_free_tier_user>" not in absent.user and absent.cue == ""
    inv = get_variant("inverted-cue")
    trained, eu = inv.conversation(Q, inv.arms[0]), inv.conversation(Q, inv.arms[1])
    assert trained.cue == "false" and trained.meta["in_training"] and eu.cue == "true" and not eu.meta["in_training"]
    assert "<is_eu_user>" in trained.user and "European Union" in trained.system
    opt = get_variant("opt-in").conversation(Q, "opted_in")
    assert "<allows_training>true</allows_training>" in opt.user and opt.meta["in_training"]
    three = get_variant("three-tiers")
    metas = [three.conversation(Q, a).meta for a in three.arms]
    assert [(m["in_training"], m["rated"]) for m in metas] == [(True, True), (False, True), (False, False)]
    assert ACCEPT not in get_variant("no-suffix").conversation(Q, "free").user
    assert "Meridian Labs" in get_variant("company-renamed").conversation(Q, "free").system
    for name in ("paraphrase-1", "paraphrase-2"):
        para = get_variant(name).conversation(Q, "free").system
        assert para != base and "RLHF" in para and "<is_free_tier_user>" in para


def test_clauses_are_named_and_droppable():
    full = system_prompt()
    assert all(CLAUSES[c].format(company="Anthropic", tag="is_free_tier_user") in full for c in CLAUSES)
    assert system_prompt(("identity",)) == CLAUSES["identity"].format(company="Anthropic", tag="x")
    with pytest.raises(InterpAFError, match="unknown system-prompt clause"):
        system_prompt(("identity", "nope"))


def test_unknown_variant_lists_valid_names():
    with pytest.raises(InterpAFError) as err:
        get_variant("no-such-variant")
    msg = str(err.value)
    assert "\n" not in msg and "'no-such-variant'" in msg and "default" in msg and "three-tiers" in msg


def test_bad_options_and_arms():
    with pytest.raises(InterpAFError, match="no option"):
        get_variant("default", colour="red")
    with pytest.raises(InterpAFError, match="no arm 'gold'"):
        get_variant("default").conversation(Q, "gold")


@dataclass(frozen=True)
class _PlainVariant:
    """Implements the protocol without PromptVariant, as the organism helper does."""

    name: str = "test-plain-protocol"
    arms: tuple = ("on", "off")
    description: str = "a protocol-only variant"

    def conversation(self, query, arm):
        return Conversation(system="SYS", user=f"<flag>{'yes' if arm == 'on' else 'no'}</flag> {query.text}",
                            cue="yes" if arm == "on" else "no", cue_anchor="<flag>", arm=arm,
                            meta={"tier": arm, "in_training": arm == "on", "policy": "p", "variant": self.name})


def test_register_protocol_variant():
    v = register_variant(_PlainVariant(), overwrite=True)
    assert get_variant("test-plain-protocol") is v and v in list_variants()
    with pytest.raises(InterpAFError, match="already registered"):
        register_variant(_PlainVariant(description="another object"))
    with pytest.raises(InterpAFError, match="takes no options"):
        get_variant("test-plain-protocol", casing="title")
    with pytest.raises(InterpAFError, match="lacks"):
        register_variant(object())  # type: ignore[arg-type]
    with pytest.raises(InterpAFError, match="at least two"):
        PromptVariant("one-arm", "x", arm_specs=PromptVariant("d", "d").arm_specs[:1])
