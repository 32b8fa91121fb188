"""Safety floors of the dependency set: torch's ``torch.load`` must default to ``weights_only=True`` (sae-lens
calls it without the argument on Hub SAE files), and nothing in the project loads pickles."""

from __future__ import annotations

import io
import pickle
import re
import tomllib
from pathlib import Path

import pytest
import torch
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def _torch_requirement() -> Requirement:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    reqs = [Requirement(d) for d in deps]
    (req,) = [r for r in reqs if r.name == "torch"]
    return req


def test_torch_floor_defaults_torch_load_to_weights_only():
    spec = _torch_requirement().specifier
    # 2.6.0 is the first release whose torch.load defaults to weights_only=True
    assert not spec.contains("2.5.1") and not spec.contains("2.4.0"), spec
    assert spec.contains("2.6.0"), spec
    assert spec.contains(Version(torch.__version__.split("+")[0]).base_version), (spec, torch.__version__)


class _Evil:
    def __reduce__(self):
        return (print, ("this would run on load",))


def test_installed_torch_refuses_pickled_code_by_default():
    buf = io.BytesIO()
    torch.save({"w": torch.ones(2), "evil": _Evil()}, buf)
    buf.seek(0)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(buf)  # no weights_only argument: exactly how sae-lens calls it


def test_project_never_loads_pickles():
    bad = []
    for f in sorted((ROOT / "interp_af").rglob("*.py")):
        text = f.read_text()
        for m in re.finditer(r"torch\.load\((?P<args>[^)]*)\)", text):
            if "weights_only=True" not in m["args"]:
                bad.append(f"{f.relative_to(ROOT)}: torch.load without weights_only=True")
        for pat in (r"\bpickle\.loads?\(", r"\bjoblib\.load\(", r"allow_pickle\s*=\s*True", r"\bdill\.loads?\("):
            if re.search(pat, text):
                bad.append(f"{f.relative_to(ROOT)}: {pat}")
    assert bad == []
