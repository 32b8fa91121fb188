"""The zoo as plugin targets: registered through the ``interp_af.plugins`` entry point, built on first use into
a cache folder (once: a second use finds it), found by name and alias."""

from __future__ import annotations

import tomllib
from pathlib import Path


def test_the_entry_point_is_declared():
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["interp_af.plugins"]["zoo"] == "interp_af.zoo.plugin:register"


def test_targets_build_on_first_use_and_are_reused(tmp_path):
    from interp_af.targets import find_target
    from interp_af.zoo import NAMES
    from interp_af.zoo.plugin import register

    register(root=tmp_path)
    for name in NAMES:
        assert find_target(f"zoo-{name}") is not None
    t = find_target("zoo-planted")   # the alias
    assert t is not None and t.name == "zoo-planted-direction"
    assert not (tmp_path / "planted-direction").exists()     # listing targets builds nothing
    path = Path(t.model())
    assert path == tmp_path / "planted-direction" and (path / "zoo.json").is_file()
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert Path(t.model()) == path and (path / "model.safetensors").stat().st_mtime_ns == stamp   # not rebuilt
