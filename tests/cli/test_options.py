"""The CLI options are the config dataclasses' fields: every command that reads requests takes the same
``[setting]`` options (``--column`` included), defaults and help come from one declaration, and a flag's value
is checked with the same rules as the TOML key."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

from interp_af.cli import _typer_app as app

QUERY_COMMANDS = (["prompts"], ["gap"], ["capture"], ["patch"], ["steer"], ["sae", "run"], ["sae", "train"])


@pytest.mark.parametrize("cmd", QUERY_COMMANDS, ids=" ".join)
def test_every_command_that_reads_queries_takes_the_setting_options(cmd):
    r = CliRunner().invoke(app, [*cmd, "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    for flag in ("--queries", "--column", "--limit", "--variant", "--contrasts", "--casing", "--model", "--backend"):
        assert flag in r.output, f"{' '.join(cmd)} lacks {flag}"


def test_defaults_and_help_come_from_the_config():
    from interp_af.stages.gap import GapConfig

    r = CliRunner().invoke(app, ["gap", "--help"], env={"COLUMNS": "200"})
    assert f"(default: {GapConfig().n_boot})" in r.output and "--n-boot" in r.output


def test_column_picks_the_request_column(monkeypatch, capsys, tmp_path, tiny_models):
    from interp_af.cli import app as entry

    f = tmp_path / "q.csv"
    f.write_text("id,prompt\n1,Write a poem about rivers and the sea\n2,Explain how a bicycle works in detail\n")
    monkeypatch.setattr(sys, "argv", ["interp-af", "prompts", "--model", str(tiny_models["llama"]), "--queries",
                                      str(f), "--column", "prompt", "--no-benign"])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exit_info:
        entry()
        raise SystemExit(0)
    out, err = capsys.readouterr()
    assert exit_info.value.code in (0, None), err
    assert "2 queries, 2 aligned twins" in out and "rivers" in out


def test_a_flag_value_is_checked_like_the_toml_key(tiny_models):
    from interp_af.errors import InterpAFError

    r = CliRunner().invoke(app, ["gap", "--model", str(tiny_models["llama"]), "--metric", "foo"])
    assert isinstance(r.exception, InterpAFError) and "--metric = 'foo': 'foo' is not one of" in str(r.exception)
    r = CliRunner().invoke(app, ["probe", "somewhere", "--folds", "1"])
    assert isinstance(r.exception, InterpAFError) and "--folds = 1: must be >= 2" in str(r.exception)
