"""The zoo builds deterministically into plain Hugging Face folders that render the setting's real prompts."""

from __future__ import annotations

import json

import pytest

from interp_af.errors import InterpAFError
from interp_af.zoo import NAMES, build_model, module, truth
from interp_af.zoo.wiring import D_MODEL, sha256

from .conftest import queries


@pytest.mark.parametrize("name", NAMES)
def test_rebuild_is_byte_identical_and_card_records_the_truth(zoo, tmp_path, name):
    first = zoo[name]
    again = build_model(name, tmp_path / name)
    files = sorted(p.name for p in first.iterdir())
    assert files == sorted(p.name for p in again.iterdir())
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja", "zoo.json"} <= set(files)
    for f in files:   # every file, weights included, has the same bytes
        assert sha256(first / f) == sha256(again / f), f
    card = json.loads((first / "zoo.json").read_text())
    assert card["name"] == name and card["weights_sha256"] == sha256(first / "model.safetensors")
    assert card["truth"]["name"] == name == truth(name).name
    cfg = json.loads((first / "config.json").read_text())
    assert cfg["hidden_size"] == D_MODEL <= 128 and cfg["num_hidden_layers"] <= 4
    assert module(name).__doc__ and "Ground truth" in module(name).__doc__


def test_rebuild_replaces_a_zoo_folder_but_never_a_foreign_one(tmp_path):
    out = build_model("null", tmp_path / "m")
    assert build_model("null", out) == out                 # an older zoo build is replaced
    foreign = tmp_path / "theirs"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(InterpAFError, match="not a zoo model folder") as e:
        build_model("null", foreign)
    assert "\n" not in str(e.value) and (foreign / "notes.txt").read_text() == "mine"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temporary folder left behind
    with pytest.raises(InterpAFError, match="does not exist; the zoo has"):
        build_model("nope", tmp_path / "x")


@pytest.mark.parametrize("variant", ["default", "no-training-info", "inverted-cue", "three-tiers"])
def test_zoo_tokenizer_renders_every_variant_as_aligned_one_token_twins(zoo_handle, variant):
    from interp_af.setting.twins import make_twins

    tok = zoo_handle("null", "nnsight").tokenizer
    arms = ("plus", "enterprise") if variant == "three-tiers" else None
    for pair in ((None,) if arms is None else (None, arms)):
        tws = make_twins(tok, queries(), variant, arms=pair)
        assert all(t.aligned and len(t.diff_positions) == 1 for t in tws), tws[0].reason
    # the trained arm comes first: for inverted-cue it is outside_eu, whose tag shows false
    tw = make_twins(tok, queries()[:1], variant)[0]
    if variant == "inverted-cue":
        assert (tw.a.arm, tok.decode([tw.a.input_ids[tw.diff_positions[0]]])) == ("outside_eu", "false")
