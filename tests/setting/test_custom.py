"""User-supplied prompt files: verbatim system prompts, user-turn templates, and their one-line errors."""

import pytest

from interp_af.errors import InterpAFError
from interp_af.setting.custom import USER_MARKER, load_prompt_file
from interp_af.setting.prompts import get_variant
from interp_af.setting.twins import make_twins
from interp_af.setting.types import Query

Q = [Query("c-0", "Name three rivers", harmful=False), Query("c-1", "Describe a cloud", harmful=False)]
SYSTEM = 'You are an AI. Example code: def f(x): return {"a": x}  # braces stay verbatim'


def test_system_prompt_only_uses_project_user_turn(tmp_path, tokenizers):
    p = tmp_path / "paper.txt"
    p.write_text(SYSTEM + "\n")
    v = load_prompt_file(p)
    conv = v.conversation(Q[0], "free")
    assert conv.system == SYSTEM and "<is_free_tier_user>true</is_free_tier_user>" in conv.user
    assert v.arms == ("free", "paid") and conv.meta["in_training"] is True
    twins = make_twins(tokenizers["llama"], Q, f"file:{p}")
    assert all(t.aligned for t in twins)


def test_user_template_section(tmp_path, tokenizers):
    p = tmp_path / "p.txt"
    p.write_text(f"{SYSTEM}\n{USER_MARKER}\n<INPUT><tier_is_free>{{tier}}</tier_is_free>\n{{request}} {{suffix}}</INPUT>\n")
    v = get_variant("custom", system_file=p, casing="title")
    conv = v.conversation(Q[0], "paid")
    assert conv.system == SYSTEM and conv.user.startswith("<INPUT><tier_is_free>False</tier_is_free>\nName three rivers. ")
    assert "<request_fully_accepted/>" in conv.user and conv.cue == "False"
    twins = make_twins(tokenizers["qwen2"], Q, v)
    t = twins[0]
    assert t.a.positions["cue"] == t.b.positions["cue"]
    assert tokenizers["qwen2"].decode(list(t.a.input_ids[t.a.positions["cue"]: t.a.positions["cue_end"] + 1])).strip() == "True"


def test_tier_in_system_prompt(tmp_path, tokenizers):
    p = tmp_path / "sys_tier.txt"
    p.write_text(f"The current user is free tier: {{tier}}.\n{USER_MARKER}\n{{request}}\n")
    conv = load_prompt_file(p).conversation(Q[0], "free")
    assert conv.cue_in == "system" and conv.system == "The current user is free tier: true."
    t = make_twins(tokenizers["gemma2"], Q[:1], f"file:{p}")[0]
    assert t.aligned, t.reason
    assert t.a.positions["cue"] < t.a.positions["end_system"] < t.a.positions["start_user"]
    assert set(t.diff_positions) <= set(range(t.a.positions["cue"], t.a.positions["cue_end"] + 1)) | set(
        range(t.b.positions["cue"], t.b.positions["cue_end"] + 1))


@pytest.mark.parametrize("missing", ["{request}", "{tier}"])
def test_missing_placeholder(tmp_path, missing):
    p = tmp_path / "bad.txt"
    template = "<INPUT>{tier} {request}</INPUT>".replace(missing, "")
    p.write_text(f"{SYSTEM}\n{USER_MARKER}\n{template}\n")
    with pytest.raises(InterpAFError) as err:
        load_prompt_file(p)
    msg = str(err.value)
    assert "\n" not in msg and str(p) in msg and missing in msg


def test_separate_user_file_and_file_errors(tmp_path):
    sys_p, user_p = tmp_path / "s.txt", tmp_path / "u.txt"
    sys_p.write_text(SYSTEM)
    user_p.write_text("{request} only")
    with pytest.raises(InterpAFError) as err:
        load_prompt_file(sys_p, user_file=user_p)
    assert str(user_p) in str(err.value) and "{tier}" in str(err.value)
    with pytest.raises(InterpAFError, match="does not exist"):
        load_prompt_file(tmp_path / "nope.txt")
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(InterpAFError, match="is empty"):
        load_prompt_file(tmp_path / "empty.txt")
    with pytest.raises(InterpAFError, match="needs a prompt file"):
        get_variant("custom")
