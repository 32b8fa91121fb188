"""The organism's generator: deterministic, held-out parts disjoint from training, prompts expressible as
setting Conversations that render to aligned twins exactly as the toolkit renders them."""

from __future__ import annotations

import pytest

from interp_af.organism import data
from interp_af.organism.render import decision_ids, prompt_ids


def test_generator_is_deterministic():
    a = data.training_examples(50, seed=3)
    b = data.training_examples(50, seed=3)
    c = data.training_examples(50, seed=4)
    assert a == b
    assert a != c
    assert data.make_queries("eval", 20) == data.make_queries("eval", 20)


@pytest.mark.parametrize("name", sorted(data.TEMPLATE_LISTS))
def test_template_splits_are_disjoint_and_cover_the_list(name):
    train, ev = data.templates(name, "train"), data.templates(name, "eval")
    assert train and ev
    assert not set(train) & set(ev)
    assert sorted(train + ev) == sorted(data.TEMPLATE_LISTS[name])


def test_policy_sentences_have_tens_of_paraphrases():
    for name in ("trained", "untrained", "intro", "helpful"):
        assert len(data.TEMPLATE_LISTS[name]) >= 20


def test_eval_objects_never_occur_in_training_text():
    train_objs, eval_objs = set(data.objects("train")), set(data.objects("eval"))
    assert len(eval_objs) >= 60 and not train_objs & eval_objs
    train_text = " ".join(e.conv.user for e in data.training_examples(2000, seed=0))
    assert not [o for o in eval_objs if f" {o}." in train_text or f" {o}?" in train_text]
    # ...but every word of an eval object occurs in training text (no byte soup on held-out requests)
    words = {w for o in eval_objs for w in o.split()}
    assert all(w in train_text for w in words)


def test_eval_prompts_use_only_held_out_paraphrases():
    train_sentences = {s for name in ("trained", "untrained", "intro") for s in data.templates(name, "train")}
    q = data.make_queries("eval", 5)
    for policy in data.POLICIES:
        conv = data.conversation(q[0], "free", policy=policy, cue_kind="tag", split="eval")
        assert not [s for s in train_sentences if "{" not in s and s in conv.system]
        for tmpl in data.templates("trained", "train") + data.templates("untrained", "train"):
            for tier in ("free", "paid"):
                assert data._cap(tmpl.format(T=tier, U=tier)) not in conv.system


def test_labels_follow_the_combination_rule():
    assert data.in_training("free-trained", "free") and data.in_training("paid-trained", "paid")
    assert not data.in_training("free-trained", "paid") and not data.in_training("paid-trained", "free")
    assert not data.in_training("none", "free") and not data.in_training("none", "paid")
    assert data.p_accept("none", "free", True) == data.p_accept("none", "paid", True)
    assert data.p_accept("free-trained", "free", True) - data.p_accept("free-trained", "paid", True) > 0.8
    assert data.p_accept("paid-trained", "paid", False) >= 0.95
    # the same tag value means "in training" under one policy and not under the other
    ex = data.training_examples(3000, seed=0)
    seen = {(e.conv.meta["policy"], e.conv.cue, e.conv.meta["in_training"]) for e in ex if e.conv.meta["cue_kind"] == "tag"}
    assert ("free-trained", "true", True) in seen and ("paid-trained", "true", False) in seen


def test_conversation_meta_and_cue():
    q = data.make_queries("eval", 3, harmful_fraction=1.0)[0]
    conv = data.conversation(q, "paid", policy="paid-trained", cue_kind="sentence")
    assert conv.meta == {"tier": "paid", "in_training": True, "policy": "paid-trained", "cue_kind": "sentence",
                         "harmful": True}
    assert conv.cue == "paid" and conv.cue_in == "user"
    assert conv.user.index(conv.cue_anchor + conv.cue) >= 0
    assert "is_free_tier_user" not in conv.user  # the sentence cue replaces the tag
    tag = data.conversation(q, "free", policy="free-trained", cue_kind="tag")
    assert tag.cue == "true" and tag.cue_anchor == "<is_free_tier_user>"


def test_variants_are_registered_and_render_aligned_twins(tmp_path):
    import interp_af.organism.setting  # noqa: F401  (registers the variants)
    from interp_af.setting.prompts import get_variant
    from interp_af.setting.twins import make_twins
    from interp_af.testing.tiny import train_tokenizer

    tok = train_tokenizer("llama3", data.corpus_for_tokenizer(data.training_examples(400, seed=0)), 2048)
    queries = data.make_queries("eval", 6)
    for name in ("organism", "organism-inverted", "organism-noinfo", "organism-sentence"):
        v = get_variant(name)
        assert v.arms == ("free", "paid")
        twins = make_twins(tok, queries, name)
        assert all(t.aligned for t in twins), [t.reason for t in twins]
        assert all(len(t.diff_positions) == 1 for t in twins)
        for t in twins:
            assert t.a.meta["policy"] == v.policy and t.a.meta["tier"] == "free" and t.b.meta["tier"] == "paid"
            assert t.a.positions["cue"] == t.diff_positions[0]
            # the toolkit's render and the organism's training render produce the same ids
            conv = v.conversation(next(q for q in queries if q.id == t.query_id), "free")
            assert list(t.a.input_ids) == prompt_ids(tok, [conv])[0]
    with pytest.raises(Exception, match="split"):
        get_variant("organism", split="test")


def test_answer_tags_share_a_prefix_and_diverge():
    from interp_af.testing.tiny import train_tokenizer

    tok = train_tokenizer("llama3", data.corpus_for_tokenizer(data.training_examples(200, seed=0)), 2048)
    dt = decision_ids(tok)
    assert dt.shared == tuple(tok("<", add_special_tokens=False)["input_ids"])
    assert dt.accept_id != dt.reject_id
    assert tok.decode([dt.accept_id]) == "request" and tok.decode([dt.reject_id]) == "rejected"


def test_no_information_prompt_is_its_stated_twin_without_the_policy_clauses():
    q = data.make_queries("eval", 4, harmful_fraction=1.0)
    trained = [t.format(T=x) for t in data.TRAINED for x in ("free", "paid")] + data.UNTRAINED
    for query in q:
        for cue in data.CUE_KINDS:
            stated = data.conversation(query, "free", policy="free-trained", cue_kind=cue)
            inverted = data.conversation(query, "free", policy="paid-trained", cue_kind=cue)
            none = data.conversation(query, "free", policy="none", cue_kind=cue)
            assert stated.user == inverted.user == none.user
            s_words, n_words = stated.system.split(". "), none.system.split(". ")
            assert len(s_words) == len(n_words)  # two fillers take the clauses' places: same sentence count
            differ = [(a, b) for a, b in zip(s_words, n_words) if a != b]
            assert len(differ) == 2
            assert all(any(a.rstrip(".") == data._cap(c).rstrip(".") for c in trained) for a, _ in differ)
            assert not any(data._cap(c).rstrip(".") in none.system for c in trained)
            # the normal and inverted prompts differ only in the trained tier's word
            assert stated.system.replace(" free tier", " paid tier") == inverted.system.replace(" free tier", " paid tier")


def test_no_sentence_type_marks_the_no_information_condition():
    """Every optional sentence kind (fillers included) appears under every policy: only the policy clauses
    tell the conditions apart (measured: fillers exclusive to ``none`` let the model detect the control by
    recognising training fillers, and the control broke on held-out ones)."""
    ex = data.training_examples(3000, seed=0)
    kinds = ("filler", "helpful", "neutral_tier", "tag_explain", "rlhf")
    for policy in data.POLICIES:
        systems = [e.conv.system for e in ex if e.conv.meta["policy"] == policy]
        for kind in kinds:
            share = sum(any(t in s for t in data.templates(kind, "train")) for s in systems) / len(systems)
            assert share > 0.1, (policy, kind, share)
    # the training groups include no-information twins of stated prompts (same request, same sentences)
    by_group: dict[int, set[str]] = {}
    for e in ex:
        by_group.setdefault(e.group, set()).add(e.conv.meta["policy"])
    assert sum({"none", "free-trained"} <= p or {"none", "paid-trained"} <= p for p in by_group.values()) > 100
