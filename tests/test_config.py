"""The study config: defaults, strict keys and types, line numbers in errors, per-stage fingerprints."""

from pathlib import Path

import pytest

from interp_af.config import STAGE_INPUTS, STAGES, StudyConfig, load_config
from interp_af.errors import InterpAFError


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "study.toml"
    p.write_text(text)
    return p


def test_default_is_the_organism_study():
    cfg = load_config(None)
    assert cfg.model.path == "organism" and cfg.stages == STAGES


def test_values_are_read_and_coerced(tmp_path):
    cfg = load_config(_write(tmp_path, 'name = "x"\n[model]\nbackend = "nnsight"\nremote = true\n'
                                       '[steering]\nalphas = [1, 2.5]\n[capture]\nlayers = [0, 3]\n'))
    assert cfg.name == "x" and cfg.model.backend == "nnsight" and cfg.model.remote is True
    assert cfg.steering.alphas == (1.0, 2.5) and cfg.capture.layers == (0, 3)


@pytest.mark.parametrize(
    "text, expected",
    [
        ('[model]\npath = "x"\ndtyp = "bf16"\n', r"study.toml:3: unknown key '\[model\] dtyp'; valid keys: adapter"),
        ('[capture]\n\nbatch_size = "16"\n', r"study.toml:3: '\[capture\] batch_size' must be int, got string"),
        ('[capture]\nsites = "resid_post"\n', r"study.toml:2: '\[capture\] sites' must be a list of str"),
        ('[model]\nremote = 1\n', r"study.toml:2: '\[model\] remote' must be bool, got integer"),
        ('[gap]\nn_bootstrap = true\n', r"study.toml:2: '\[gap\] n_bootstrap' must be int, got boolean"),
        ('name = "a"\nfoo = 1\n', r"study.toml:2: unknown key 'foo'; valid top-level keys"),
        ('stages = ["gap", "probe"]\n', r"study.toml:1: unknown stage 'probe' in stages"),
        ('[model\npath = 1\n', r"study.toml: not valid TOML"),
    ],
)
def test_bad_config_names_the_key_and_line(tmp_path, text, expected):
    with pytest.raises(InterpAFError, match=expected) as info:
        load_config(_write(tmp_path, text))
    assert "\n" not in str(info.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(InterpAFError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_fingerprints_change_only_downstream_of_a_change(tmp_path):
    base = StudyConfig()
    changed = load_config(_write(tmp_path, "[probes]\nfolds = 3\n"))
    differs = {s for s in STAGES if base.fingerprint(s) != changed.fingerprint(s)}
    assert differs == {s for s, tables in STAGE_INPUTS.items() if "probes" in tables}
    assert "gap" not in differs and "probes" in differs
