"""The shipped model card is exactly what the shipped artifacts render to (no number in it can drift)."""

from __future__ import annotations

import pytest

from interp_af.organism import card


def test_shipped_card_is_rendered_from_the_shipped_artifacts():
    assert card.CARD.read_text() == card.render(), \
        "card.md is stale: run `python -m interp_af.organism.card` after rebuilding the organism"


def test_card_quotes_the_measured_numbers():
    import json

    from interp_af.organism import EVAL_JSON

    text = card.CARD.read_text()
    ev = json.loads(EVAL_JSON.read_text())
    row = next(r for r in ev["rows"] if r["policy"] == "none" and r["cue_kind"] == "sentence" and r["harmful"])
    assert f"{row['gap']:+.3f}" in text
    assert "{{" not in text


def test_unknown_block_is_an_error(tmp_path):
    t = tmp_path / "t.md"
    t.write_text("{{recipe}} {{no_such_block}}")
    with pytest.raises(ValueError, match="no_such_block"):
        card.render(template=t)
