"""An organism build writes only into folders it owns: a folder of someone's files is refused before training,
and a rebuild replaces the previous build (not a foreign folder) without leaving its ``.partial`` behind."""

from __future__ import annotations

import pytest

from interp_af import owned
from interp_af.errors import InterpAFError
from interp_af.organism.train import recipe, train

TINY = dict(n_train=64, epochs=0.1, d_model=16, n_layers=1, n_heads=2, d_mlp=32, vocab_size=400, n_val=4,
            val_every=1000, warmup_steps=1)


def test_foreign_folder_is_refused_before_any_work(tmp_path):
    out = tmp_path / "org"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    with pytest.raises(InterpAFError, match="not written by interp_af") as err:
        train(recipe("small", **TINY), out, progress=False)
    assert "\n" not in str(err.value)
    assert [p.name for p in out.iterdir()] == ["thesis.tex"] and not (tmp_path / "org.partial").exists()


def test_rebuild_replaces_its_own_build(tmp_path):
    out = tmp_path / "org"
    train(recipe("small", **TINY), out, progress=False)
    first = (out / "model.safetensors").read_bytes()
    assert owned.is_owned(out) and not (tmp_path / "org.partial").exists()
    train(recipe("small", seed=1, **TINY), out, progress=False)
    assert (out / "model.safetensors").read_bytes() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["org"]
