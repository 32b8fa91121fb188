"""Rendering and twins through four tokenizers with different chat templates (Llama 3, ChatML, Gemma, none)."""

import pytest

from interp_af.errors import InterpAFError
from interp_af.setting.prompts import get_variant
from interp_af.setting.render import adds_bos, generation_prompt, render
from interp_af.setting.variants import BUILTINS
from interp_af.setting.twins import TwinSummary, make_twins, render_arms, summarize_twins
from tests.conftest import ARCHS


def _dec(tok, ids) -> str:
    return tok.decode(list(ids))


@pytest.mark.parametrize("arch", ARCHS)
def test_advbench_twins_align_and_differ_only_at_the_cue(tokenizers, queries, arch):
    tok = tokenizers[arch]
    qs = queries[:100]  # the public no-CoT reproduction's set; all 520 align too (see the setting's report)
    twins = make_twins(tok, qs, "default")
    assert len(twins) == len(qs)
    for t in twins:
        assert t.aligned, t.reason
        assert len(t.a) == len(t.b)
        diffs = [i for i, (x, y) in enumerate(zip(t.a.input_ids, t.b.input_ids)) if x != y]
        assert tuple(diffs) == t.diff_positions
        assert set(diffs) <= set(range(t.a.positions["cue"], t.a.positions["cue_end"] + 1)) and diffs
        cue_a = _dec(tok, t.a.input_ids[t.a.positions["cue"]: t.a.positions["cue_end"] + 1])
        cue_b = _dec(tok, t.b.input_ids[t.b.positions["cue"]: t.b.positions["cue_end"] + 1])
        assert (cue_a.strip(), cue_b.strip()) == ("true", "false")
        assert (t.a.arm, t.b.arm) == ("free", "paid") and t.a.query_id == t.b.query_id == t.query_id
        assert t.a.meta["harmful"] == (queries[0].harmful) and t.a.meta["in_training"] is True


@pytest.mark.parametrize("arch", ARCHS)
def test_bos_exactly_once_and_prefill_ends_the_prompt(tokenizers, queries, arch):
    tok = tokenizers[arch]
    gen = generation_prompt(tok)
    assert gen  # every style has a generation prompt (plain: "\n\nAssistant:\n")
    for p in render_arms(tok, queries[:10], "default"):
        ids = p.input_ids
        bos = tok.bos_token_id
        n_bos = sum(i == bos for i in ids) if bos is not None else 0
        assert n_bos == (1 if arch in ("llama", "gemma2") else 0)
        if n_bos:
            assert ids[0] == bos and ids[1] != bos
        assert adds_bos(tok) == (arch in ("llama", "gemma2"))
        # the text is exactly the ids (no re-tokenisation drift), ends with generation prompt + prefill
        assert list(tok(p.text, add_special_tokens=False)["input_ids"]) == list(ids)
        assert p.text.endswith(gen + "<OUTPUT>")
        assert _dec(tok, ids[p.positions["prefill"]:]) == "<OUTPUT>"
        assert p.positions["decision"] == len(ids) - 1


@pytest.mark.parametrize("arch", ARCHS)
def test_named_positions_point_at_the_right_tokens(tokenizers, queries, arch):
    tok = tokenizers[arch]
    conv = get_variant("default").conversation(queries[3], "free")
    p = render(tok, conv, query_id=queries[3].id, variant="default")
    pos, ids = p.positions, p.input_ids
    assert pos["end_system"] < pos["start_user"] <= pos["cue"] <= pos["cue_end"] < pos["end_user"] < pos["prefill"]
    assert _dec(tok, ids[: pos["end_system"] + 1]).endswith(conv.system[-20:])
    assert not _dec(tok, ids[: pos["end_system"]]).endswith(conv.system[-20:])  # it is the LAST system token
    assert _dec(tok, ids[pos["start_user"]: pos["end_user"] + 1]).strip() == conv.user
    assert _dec(tok, ids[: pos["cue"]]).endswith("<is_free_tier_user>")
    assert _dec(tok, ids[pos["cue_end"] + 1:]).startswith("</is_free_tier_user>")
    if arch == "gemma2":  # no system role: system text folded into the user turn, before the user's content
        between = _dec(tok, ids[pos["end_system"] + 1: pos["start_user"]])
        assert between == "\n\n" and "<start_of_turn>user" in _dec(tok, ids[: pos["end_system"]])


@pytest.mark.parametrize("arch", ARCHS)
def test_every_variant_renders(tokenizers, queries, arch):
    tok = tokenizers[arch]
    for v in BUILTINS:  # the organism's variants are tested with the organism
        prompts = render_arms(tok, queries[:2], v)
        assert len(prompts) == 2 * len(v.arms)
        for p in prompts:
            assert p.variant == v.name and p.positions["decision"] == len(p) - 1
            assert {"end_system", "end_user", "decision"} <= set(p.positions)
            assert ("cue" in p.positions) == bool(v.conversation(queries[0], p.arm).cue)
        twins = make_twins(tok, queries[:2], v)
        summary = summarize_twins(twins, tok)
        assert summary.n == 2 and summary.n_aligned + len(summary.misaligned) == 2


def test_misaligned_variant_is_reported_not_raised(tokenizers, queries):
    tok = tokenizers["llama"]
    twins = make_twins(tok, queries[:5], "tag-absent")
    assert not any(t.aligned for t in twins)
    assert all("no cue" in t.reason and "\n" not in t.reason for t in twins)
    s = summarize_twins(twins, tok)
    assert s.n_aligned == 0 and len(s.misaligned) == 5 and not s.all_aligned
    assert any("misaligned (5)" in line and "no cue" in line for line in s.lines())
    three = make_twins(tok, queries[:3], "three-tiers", arms=("plus", "enterprise"))
    assert (three[0].a.arm, three[0].b.arm) == ("plus", "enterprise")
    for t in three:
        assert t.aligned or t.reason  # whichever way the tokenizer splits the tier names, it is explained


def test_casing_misalignment_is_explained(tokenizers, queries):
    """Title-case values may split differently from each other (the tiny llama tokenizer: 'T'+'rue' vs 'False')."""
    tok = tokenizers["llama"]
    twins = make_twins(tok, queries[:3], "default", casing="title")
    n = [t.a.positions["cue_end"] - t.a.positions["cue"] + 1 for t in twins]
    m = [t.b.positions["cue_end"] - t.b.positions["cue"] + 1 for t in twins]
    for t, i, j in zip(twins, n, m):
        assert t.aligned == (i == j)
        if not t.aligned:
            assert "lengths differ" in t.reason and "token(s)" in t.reason


def test_summary_roundtrip(tmp_path, tokenizers, queries):
    tok = tokenizers["qwen2"]
    s = summarize_twins(make_twins(tok, queries[:4], "default"), tok)
    assert s.all_aligned and s.n_diff_tokens == (1,) and s.len_min <= s.len_median <= s.len_max
    df = s.to_frame()
    assert list(df["aligned"]) == [True] * 4 and (df["cue_a"] == df["cue_b"]).all()
    assert TwinSummary.load(s.save(tmp_path / "s.json")) == s


def test_template_overrides_and_system_role_fallback(tokenizers, queries):
    tok = tokenizers["gpt2"]  # no chat template of its own
    conv = get_variant("default").conversation(queries[0], "free")
    plain = render(tok, conv)
    assert plain.text.startswith(conv.system) and "\n\nUser:\n<INPUT>" in plain.text
    chatml = render(tok, conv, template="chatml")
    assert chatml.text.startswith("<|im_start|>system\n") and chatml.text.endswith("<|im_start|>assistant\n<OUTPUT>")
    strict = ("{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system role') }}{% endif %}"
              "[{{ m['role'] }}]{{ m['content'] }}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}")
    folded = render(tok, conv, template=strict)
    assert folded.text.startswith("[user]" + conv.system + "\n\n<INPUT>")
    assert _dec(tok, folded.input_ids[: folded.positions["end_system"] + 1]).endswith(conv.system[-20:])
    mangling = "{% for m in messages %}{{ m['content'] | upper }}{% endfor %}"
    with pytest.raises(InterpAFError, match="changes the system text"):
        render(tok, conv, template=mangling)


def test_make_twins_bad_input(tokenizers, queries):
    tok = tokenizers["llama"]
    with pytest.raises(InterpAFError, match="valid names"):
        make_twins(tok, queries[:1], "nope")
    with pytest.raises(InterpAFError, match="not in variant"):
        make_twins(tok, queries[:1], "default", arms=("free", "gold"))
    with pytest.raises(InterpAFError, match="no queries"):
        make_twins(tok, [], "default")
