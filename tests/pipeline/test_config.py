"""The study config: defaults from the target, strict keys, types and values with file:line in errors, and
per-stage fingerprints that cover exactly what each stage is handed."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest

from interp_af.errors import InterpAFError
from interp_af.options import options_of
from interp_af.pipeline.config import StudyConfig, load_config, tables
from interp_af.pipeline.runner import fingerprint
from interp_af.stages import stages


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "study.toml"
    p.write_text(text)
    return p


def test_default_is_the_default_targets_study():
    cfg = load_config(None)
    assert cfg.model.path == "organism" and cfg.setting.variant == "organism" and cfg.name == "organism"
    assert cfg.setting.contrasts == ("organism-inverted", "organism-noinfo", "organism-sentence")
    assert cfg.stages == tuple(stages())


def test_values_are_read_and_coerced(tmp_path):
    cfg = load_config(_write(tmp_path, 'name = "x"\n[model]\nbackend = "nnsight"\nremote = true\n'
                                       '[steering]\nalphas = [1, 2.5]\n[capture]\nlayers = [0, 3]\n'))
    assert cfg.name == "x" and cfg.model.backend == "nnsight" and cfg.model.remote is True
    assert cfg.steering.alphas == (1.0, 2.5) and cfg.capture.layers == (0, 3)


@pytest.mark.parametrize(
    "text, expected",
    [
        ('[model]\npath = "x"\ndtyp = "bf16"\n', r"study.toml:3: unknown key '\[model\] dtyp'; valid keys: adapter"),
        ('[capture]\n\nbatch_size = "16"\n', r"study.toml:3: \[capture\] batch_size must be an int, got string"),
        ('[capture]\nsites = "resid_post"\n', r"study.toml:2: \[capture\] sites must be a list of str"),
        ('[model]\nremote = 1\n', r"study.toml:2: \[model\] remote must be a bool, got integer"),
        ('[gap]\nn_boot = true\n', r"study.toml:2: \[gap\] n_boot must be an int, got boolean"),
        ('[gap]\nmetric = "foo"\n', r"study.toml:2: \[gap\] metric = 'foo': 'foo' is not one of forward, generate"),
        ('[probes]\n\n\nfolds = 1\n', r"study.toml:4: \[probes\] folds = 1: must be >= 2"),
        ('[setting]\nlimit = 0\n', r"study.toml:2: \[setting\] limit = 0: must be >= 1"),
        ('[capture]\nsites = ["resid_post", "resid_mid"]\n', r"study.toml:2: \[capture\] sites = .*'resid_mid' is not"),
        ('name = "a"\nfoo = 1\n', r"study.toml:2: unknown key 'foo'; valid top-level keys"),
        ('stages = ["gap", "probe"]\n', r"study.toml:1: unknown stage 'probe' in stages"),
        ('stages = ["gap", "probes"]\n', r"study.toml:1: stage 'probes' reads capture, which must come before it"),
        ('[setting]\nvariant = "nope"\n', r"study.toml:2: \[setting\] variant: unknown variant 'nope'"),
        ('name = "../elsewhere"\n', r"study.toml:1: name '../elsewhere' is a path, not a name"),
        ('[model\npath = 1\n', r"study.toml: not valid TOML"),
    ],
)
def test_bad_config_names_the_key_and_line(tmp_path, text, expected):
    with pytest.raises(InterpAFError, match=expected) as info:
        load_config(_write(tmp_path, text))
    assert "\n" not in str(info.value)


def test_missing_and_non_utf8_config_files(tmp_path):
    with pytest.raises(InterpAFError, match="not found"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "latin1.toml"
    bad.write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(InterpAFError, match="not UTF-8"):
        load_config(bad)


def test_a_contrast_without_a_declared_role_is_refused(tmp_path):
    from interp_af.setting.prompts import PromptVariant, register_variant

    register_variant(PromptVariant("test-roleless", "a test variant with no role", role=""), overwrite=True)
    with pytest.raises(InterpAFError, match="contrast variant 'test-roleless' declares no role"):
        load_config(_write(tmp_path, '[setting]\nvariant = "default"\ncontrasts = ["test-roleless"]\n'))


# ------------------------------------------------------------------------------------------------ fingerprints
# What each stage reads, written out by hand (not derived from the declarations it checks).
READS = {
    "gap": {"model", "setting", "gap"},
    "capture": {"model", "setting", "capture"},
    "probes": {"model", "setting", "capture", "probes"},   # through the capture it reads
    "patching": {"model", "setting", "patching"},
    "steering": {"model", "setting", "steering"},
    "sae": {"model", "setting", "sae"},
}


def _other(value, hint, spec):
    """A valid value different from ``value`` for a field of type ``hint``."""
    base = hint
    if typing.get_origin(hint) in (typing.Union, __import__("types").UnionType):
        base = next(a for a in typing.get_args(hint) if a is not type(None))
        if value is None:
            return ("no-training-info",)
    if typing.get_origin(base) is tuple:
        item = next(a for a in typing.get_args(base) if a is not Ellipsis)
        if spec.choices:
            other = tuple(c for c in spec.choices if c not in (value or ()))[:1] or tuple(spec.choices[:1])
            return other if other != value else tuple(spec.choices)
        return (*value, {int: 1, float: 0.25, str: "x"}[item])
    if base is bool:
        return not value
    if spec.choices:
        return next(c for c in spec.choices if c != value)
    if base is int:
        return value + 1
    if base is float:
        return value + 0.5
    return value + "x"


SPECIAL = {("probes", "conditions"): ("a:arm", "b:in_training"),   # values with a grammar of their own
           ("verdicts", "transfer_margin"): 0.3}                 # (or a range of their own)


def _cases():
    cfg = StudyConfig()
    for table, cls in tables().items():
        for f, hint, spec in options_of(cls):
            value = SPECIAL.get((table, f.name)) or _other(getattr(cfg.table(table), f.name), hint, spec)
            yield table, f.name, value


@pytest.mark.parametrize("table, key, value", list(_cases()), ids=lambda x: str(x))
def test_changing_a_table_changes_exactly_the_stages_that_read_it(table, key, value):
    base = StudyConfig()
    changed = dataclasses.replace(base, **{table: dataclasses.replace(base.table(table), **{key: value})})
    differs = {s for s in stages() if fingerprint(base, s) != fingerprint(changed, s)}
    assert differs == {s for s, reads in READS.items() if table in reads}, f"[{table}] {key} = {value!r}"


def test_every_stage_has_its_reads_written_down():
    assert set(READS) == set(stages())
