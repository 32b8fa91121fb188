"""The bad-input catalogue (``tests/cli/catalogue.py``) as tests: every kind of mistake exits with status 2, at
most two lines on stderr, no traceback, the input named, a fix stated, and nothing new on disk. Plus the
process-level behaviour that only a real process shows (a handful of cases through ``python -m interp_af.cli``),
Ctrl-C (raised, and returned as 130 by typer), an internal error (one line + a crash log; ``--debug`` shows it),
and that a completed command writes its output folder and nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from . import catalogue as cat

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fixtures(tiny_models, tmp_path_factory):
    return cat.build_fixtures(tmp_path_factory.mktemp("catalogue"), tiny_models["llama"])


@pytest.fixture(autouse=True)
def _logs(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_AF_LOG_DIR", str(tmp_path / "crash-logs"))
    monkeypatch.setenv("INTERP_AF_PNG", "0")
    monkeypatch.delenv("INTERP_AF_DEBUG", raising=False)


def test_the_catalogue_is_large_and_covers_every_subcommand():
    from interp_af.cli import _typer_app

    assert len(cat.CASES) >= 60 and len({c.id for c in cat.CASES}) == len(cat.CASES)
    commands = {c.name or c.callback.__name__ for c in _typer_app.registered_commands}
    groups = {g.name: g.typer_instance for g in _typer_app.registered_groups}
    every = commands | {f"{g} {c.name or c.callback.__name__}" for g, ti in groups.items() for c in ti.registered_commands}
    covered = {" ".join(c.argv[:2]) if c.argv and c.argv[0] in groups else (c.argv[0] if c.argv else "")
               for c in cat.CASES}
    assert every - covered == set(), f"subcommands without a bad-input case: {sorted(every - covered)}"


@pytest.mark.parametrize("case", cat.CASES, ids=[c.id for c in cat.CASES])
def test_bad_input(case, fixtures, tmp_path):
    model, cap = fixtures
    d = tmp_path / "work"
    cat.prepare(case, d, model, cap)
    before = cat.listing(d)
    o = cat.run_cli(cat.expand(case, d, model, cap), d)
    bad = cat.problems(case, o, before, cat.listing(d))
    assert not bad, f"{case.id}: {bad}\nstderr:\n{o.err}\n{o.error}"
    assert not (tmp_path / "crash-logs").exists()


def _proc(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    e = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **env}
    return subprocess.run([sys.executable, "-m", "interp_af.cli", *args], cwd=cwd, env=e, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("args,needle", [
    ([], "missing command"), (["gap", "--limit", "abc"], "abc"), (["gap", "--frob"], "--frob"),
    (["probe"], "capture"), (["run", "nosuch.toml"], "nosuch.toml")], ids=["bare", "not-an-int", "unknown-option",
                                                                           "missing-argument", "user-error"])
def test_a_real_process_exits_2_with_one_line(args, needle, tmp_path):
    p = _proc(args, tmp_path)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr and 1 <= len(lines) <= 2 and needle in p.stderr, p.stderr
    assert os.listdir(tmp_path) == []


def test_version(tmp_path):
    from interp_af import __version__

    p = _proc(["--version"], tmp_path)
    assert p.returncode == 0 and p.stdout.strip() == f"interp-af {__version__}", p.stderr


def _patched_command(monkeypatch, exc: BaseException):
    """Make ``interp-af targets`` raise ``exc``, as a command in the middle of its work would."""
    import interp_af.targets as targets_mod

    def boom(*_a, **_k):
        raise exc

    monkeypatch.setattr(targets_mod, "default_target", boom)


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, tmp_path):
    _patched_command(monkeypatch, KeyboardInterrupt())
    o = cat.run_cli(["targets"], tmp_path)
    lines = [ln for ln in o.err.splitlines() if ln.strip()]
    assert o.code == 130 and len(lines) == 1 and "interrupted" in lines[0] and not o.error, o.err


def test_a_returned_130_is_honoured(monkeypatch, tmp_path):
    """typer 0.29 in non-standalone mode turns Ctrl-C into a *returned* 130 (and ``typer.Exit(130)`` too): the
    entry point must exit 130, not 0, or ``interp-af gap ... && next-step`` runs the next step."""
    import typer

    _patched_command(monkeypatch, typer.Exit(130))
    o = cat.run_cli(["targets"], tmp_path)
    assert o.code == 130 and "interrupted" in o.err, o.err


def test_an_internal_error_is_one_line_with_a_log(monkeypatch, tmp_path):
    _patched_command(monkeypatch, ZeroDivisionError("division by zero"))
    o = cat.run_cli(["targets"], tmp_path)
    lines = [ln for ln in o.err.splitlines() if ln.strip()]
    assert o.code == 1 and len(lines) == 1 and "bug" in lines[0] and "--debug" in lines[0] and not o.error, o.err
    logs = list((tmp_path / "crash-logs").glob("crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in lines[0]
    text = logs[0].read_text()
    assert "Traceback" in text and "ZeroDivisionError: division by zero" in text and "interp-af targets" in text


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_shows_the_traceback(monkeypatch, tmp_path, how):
    _patched_command(monkeypatch, ZeroDivisionError("division by zero"))
    if how == "env":
        monkeypatch.setenv("INTERP_AF_DEBUG", "1")
    o = cat.run_cli(["--debug", "targets"] if how == "flag" else ["targets"], tmp_path)
    assert o.code == "traceback" and "ZeroDivisionError" in o.error
    from interp_af.cli import exits

    exits.set_debug(False)


def test_disk_full_that_escapes_a_writer_is_one_line(monkeypatch, tmp_path):
    import errno

    _patched_command(monkeypatch, OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x.json")))
    o = cat.run_cli(["targets"], tmp_path)
    assert o.code == 2 and "no space left" in o.err and "x.json" in o.err and len(o.err.strip().splitlines()) == 1


def test_a_completed_command_writes_its_output_folder_and_nothing_else(fixtures, tmp_path):
    model, cap = fixtures
    d = tmp_path / "work"
    d.mkdir()
    (d / "q.txt").write_text("Explain how photosynthesis works\nWrite a poem about the sea\n")
    args = ["gap", "--model", str(model), "--queries", "q.txt", "--no-benign", "--contrasts", "", "--n-boot", "10",
            "--out", "g"]
    o = cat.run_cli(args, d)
    assert o.code == 0, o.err + o.error
    assert sorted(os.listdir(d)) == ["g", "q.txt"] and (d / "g" / ".interp_af.json").is_file()
    assert (d / "g" / "gap_study.json").is_file()
    o = cat.run_cli(args, d)  # the folder is interp_af's now: a rerun writes into it
    assert o.code == 0, o.err + o.error


def test_a_second_run_into_a_running_runs_folder_is_refused(fixtures, tmp_path):
    """The folder's writer lock is held by a running ``interp-af run`` (here: held by the test itself, which is
    the same to flock): a second run into it is one line, exit 2, and touches nothing."""
    from interp_af import owned

    model, cap = fixtures
    d = tmp_path / "work"
    d.mkdir()
    (d / "q.txt").write_text("Explain how photosynthesis works\nWrite a poem about the sea\n")
    (d / "study.toml").write_text(cat.TOML_OK.replace("{m}", str(model)))
    run_dir = owned.claim_dir(d / "r", what="run")
    with owned.writer_lock(run_dir, what="run"):
        before = cat.listing(d)
        o = cat.run_cli(["run", "study.toml", "--out", "r"], d)
        assert o.code == 2 and "another run is writing" in o.err and len(o.err.strip().splitlines()) == 1, o.err
        assert cat.listing(d) == before
