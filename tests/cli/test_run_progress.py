"""``interp-af run`` draws a progress bar (tqdm, on stderr) for every stage that does real work, and none
under ``--quiet``.

Each stage's bar is named after the stage (``gap: 100%|...``, ``patching:  50%|...``), so the test can
tell which stage drew one. The study is the organism's on a tiny budget, run twice into two fresh folders
(a reused stage computes nothing and would draw nothing, which would make the quiet half pass for free).
"""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from interp_af.cli import _typer_app as app

TOML = """\
name = "progress"
stages = ["gap", "capture", "probes", "patching", "steering", "sae"]
[setting]
limit = 16
contrasts = ["organism-inverted"]
[gap]
n_boot = 50
[probes]
folds = 2
n_boot = 0
[patching]
n_queries = 2
sites = ["resid_pre"]
attribution = ["atp"]
[steering]
alphas = [1.0]
n_random = 1
layers = [1]
[sae]
n_queries = 2
top_k = 1
n_random = 1
"""

STAGES = ("gap", "capture", "probes", "patching", "steering", "sae")
BAR = re.compile(r"(?:^|[\r\n])(?P<desc>[\w -]+?)(?: -> \S+)?: +\d+%\|")


def _run(tmp_path, name: str, *extra: str):
    cfg = tmp_path / "study.toml"
    cfg.write_text(TOML)
    runner = CliRunner()
    r = runner.invoke(app, ["run", str(cfg), "--out", str(tmp_path / name), *extra],
                      env={"INTERP_AF_PNG": "0", "COLUMNS": "120"})
    assert r.exit_code == 0, (r.output[-3000:], r.exception)
    return r


@pytest.fixture(scope="module")
def loud(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("loud"), "run")


def test_every_stage_draws_a_progress_bar_on_stderr(loud):
    bars = {m["desc"].strip() for m in BAR.finditer(loud.stderr)}
    missing = [s for s in STAGES if s not in bars]
    assert not missing, f"no progress bar for {missing}; bars seen: {sorted(bars)}"
    assert "%|" not in loud.stdout, "progress bars belong on stderr, stdout is for the report paths"


def test_quiet_draws_no_progress_bar(tmp_path):
    quiet = _run(tmp_path, "quiet", "--quiet")
    assert "%|" not in quiet.stderr and "%|" not in quiet.stdout, quiet.stderr[-2000:]
    # the same stages ran (none reused) and the report was still written
    assert "report:" in quiet.stdout and (tmp_path / "quiet" / "report.html").is_file()
    assert " no " in quiet.stderr and " yes " not in quiet.stderr, quiet.stderr[-2000:]
