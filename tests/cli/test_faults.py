"""Faults at the process level, through the real command line: ``kill -9`` at several points of ``interp-af
capture`` and ``interp-af run`` and then a resume give byte-identical results (and no orphan temporary files),
Ctrl-C (a real SIGINT) exits 130 with one line and nothing half-written, and a full disk (a real small tmpfs
where mounting is allowed) is one line with nothing truncated left behind.

The faults are placed deterministically rather than by timers: a small wrapper counts the process's calls to
``os.replace`` (one per finished file: every write goes through :mod:`interp_af.atomic`) or ``os.fsync`` (a
temporary file fully written but not yet renamed) and signals itself at the N-th one. A first counting run
tells how many there are, so the kill points spread over the whole command (first file, middle, last rename).

The library-level versions live elsewhere and are not repeated here: a capture killed between shards and while
merging an array (``tests/acts/test_resume.py``), a stage interrupted by an exception
(``tests/pipeline/test_runner.py``), ENOSPC inside one atomic write (``tests/test_atomic.py``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BOOKKEEPING = {".lock", ".interp_af.json", ".verified.json"}   # locks, ownership markers (with a date), caches
QUERIES = "".join(f"Write a short poem about topic number {i}\n" for i in range(6))

WRAPPER = textwrap.dedent("""
    import os, signal, sys
    # A terminal's Ctrl-C reaches a process whose SIGINT is handled. A test run started in the background by a
    # non-interactive shell (`.ci/run &`) ignores SIGINT, children inherit that, and Python then installs no
    # handler: restore the one an interactive shell would give the command.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    mode, fn, n = os.environ["FAULT"].split(":")
    n, count, real = int(n), [0], getattr(os, fn)
    def hooked(*a, **k):
        count[0] += 1
        if count[0] == n:
            os.kill(os.getpid(), signal.SIGKILL if mode == "kill" else signal.SIGINT)
        return real(*a, **k)
    setattr(os, fn, hooked)
    if mode == "count":
        import atexit
        atexit.register(lambda: open(os.environ["FAULT_COUNT"], "w").write(str(count[0])))
    from interp_af.cli import app
    app()
""")


def cli(args: list[str], cwd: Path, fault: str = "none:replace:0", count_file: Path | None = None,
        ) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FAULT": fault, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "INTERP_AF_PNG": "0", "TQDM_DISABLE": "1", "COLUMNS": "200", "OMP_NUM_THREADS": "1",
           "INTERP_AF_LOG_DIR": str(cwd / "crash-logs")}
    if count_file is not None:
        env["FAULT_COUNT"] = str(count_file)
    return subprocess.run([sys.executable, "-c", WRAPPER, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def counted(args: list[str], cwd: Path, fn: str = "replace") -> int:
    f = cwd / f"count-{fn}.txt"
    p = cli(args, cwd, f"count:{fn}:0", f)
    assert p.returncode == 0, p.stderr[-3000:]
    return int(f.read_text())


def files_of(d: Path, skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Every file under ``d`` by relative path (bookkeeping and ``skip`` left out; a skip entry starting with
    '.' is a suffix, e.g. '.html')."""
    def skipped(rel: str) -> bool:
        return any(rel.endswith(s) if s.startswith(".") else rel.startswith(s) for s in skip)

    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*"))
            if p.is_file() and p.name not in BOOKKEEPING and not skipped(str(p.relative_to(d)))}


def differing(a: dict[str, bytes], b: dict[str, bytes]) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def temps(d: Path) -> list[str]:
    from interp_af.atomic import is_temp_name

    return [str(p) for p in d.rglob("*") if is_temp_name(p.name) or ".tmp" in p.name]


def points(n: int) -> list[int]:
    """Kill points spread over a command that renames ``n`` files: the first, the middle and the last."""
    return sorted({1, max(1, n // 2), max(1, n - 1)})


@pytest.fixture(scope="module")
def work(tiny_models, tmp_path_factory):
    d = tmp_path_factory.mktemp("faults")
    (d / "q.txt").write_text(QUERIES)
    return d, tiny_models["llama"]


def capture_args(model: Path, out: str) -> list[str]:
    return ["capture", "--model", str(model), "--queries", "q.txt", "--no-benign", "--contrasts", "", "--layers",
            "0,1", "--sites", "resid_post,mlp_out", "--positions", "cue,decision", "--batch-size", "4", "--out", out]


@pytest.fixture(scope="module")
def capture_reference(work):
    d, model = work
    n = counted(capture_args(model, "ref-cap"), d)
    return d / "ref-cap", n


def test_kill_9_during_capture_then_resume_is_byte_identical(work, capture_reference):
    """Killed at the first rename (the folder's marker), in the middle and at the last one; and once with a
    temporary file fully written but not renamed (at an fsync): the orphan ``.tmp-PID`` file is cleared."""
    d, model = work
    ref, n = capture_reference
    for where, k in [*(("replace", k) for k in points(n)), ("fsync", max(1, n // 2))]:
        out = f"cap-{where}-{k}"
        p = cli(capture_args(model, out), d, f"kill:{where}:{k}")
        assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]
        p = cli(capture_args(model, out), d)  # the same command again resumes
        assert p.returncode == 0, p.stderr[-2000:]
        got, want = files_of(d / out), files_of(ref)
        assert got == want, f"kill at {where} #{k} of {n}: {differing(got, want)}"
        assert temps(d / out) == [], f"orphan temporary files after resuming a kill at {where} #{k}"


def test_ctrl_c_during_capture_is_exit_130_one_line_and_nothing_half_written(work, capture_reference):
    d, model = work
    ref, n = capture_reference
    for k in [max(1, n // 2)]:
        out = f"cap-int-{k}"
        p = cli(capture_args(model, out), d, f"int:fsync:{k}")   # Ctrl-C with a temporary file written, not renamed
        assert p.returncode == 130, p.stderr[-2000:]
        assert "Traceback" not in p.stderr
        said = [ln for ln in p.stderr.splitlines() if "interrupted" in ln]
        assert len(said) == 1 and p.stderr.strip().splitlines()[-1] == said[0], p.stderr
        assert temps(d / out) == [], "a temporary file survived Ctrl-C"
        for f in (d / out).rglob("*.json"):
            json.loads(f.read_text())  # every JSON file there is whole
        p = cli(capture_args(model, out), d)
        assert p.returncode == 0 and files_of(d / out) == files_of(ref), p.stderr[-2000:]


STUDY = """\
name = "faults"
stages = ["gap", "capture", "probes"]
[model]
path = "{model}"
[setting]
queries = "q.txt"
benign = false
contrasts = []
[gap]
n_boot = 20
[capture]
layers = [0, 1]
positions = ["cue", "decision"]
batch_size = 4
[probes]
folds = 2
n_boot = 0
controls = false
transfer = false
"""
# Files of a run folder that legitimately differ between two runs of the same study: the stage records carry
# durations, and every HTML page (the report, the figures) carries dates or random element ids; the numbers
# they draw are in the JSON / CSV / safetensors files compared.
RUN_VOLATILE = (".html", "gap/done.json", "capture/done.json", "probes/done.json")


@pytest.mark.slow
def test_kill_9_during_run_then_resume_is_byte_identical(work):
    work_dir, model = work
    args = ["run", "study.toml", "--out", "run", "--quiet"]

    def folder(name: str) -> Path:  # each run in a folder of its own, so paths recorded in results are the same
        d = work_dir / name
        d.mkdir()
        (d / "q.txt").write_text(QUERIES)
        (d / "study.toml").write_text(STUDY.format(model=model))
        return d

    ref_dir = folder("ref-study")
    n = counted(args, ref_dir)
    ref = files_of(ref_dir / "run", RUN_VOLATILE)
    assert "summary.json" in ref and any(k.startswith("probes/") for k in ref)
    for k in points(n):
        d = folder(f"study-{k}")
        out = "run"
        p = cli(args, d, f"kill:replace:{k}")
        assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]
        p = cli(args, d)
        assert p.returncode == 0, p.stderr[-2000:]
        got = files_of(d / out, RUN_VOLATILE)
        assert got == ref, f"kill at rename #{k} of {n}: {differing(got, ref)}"
        assert temps(d / out) == []


def _mount_tmpfs(d: Path, size: str) -> bool:
    d.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(d)],
                          capture_output=True).returncode == 0


def test_disk_full_through_the_command_line(work, tmp_path):
    """``gap`` writing onto a 256 KiB disk: its figures (plotly.js alone is ~4 MB) do not fit. One line naming
    the disk problem, exit 2, and no truncated or temporary file left on the disk."""
    d, model = work
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "256k"):
        pytest.skip("mounting a tmpfs is not permitted here; tests/test_atomic.py test_disk_full_simulated and "
                    "tests/cli/test_catalogue.py test_disk_full_that_escapes_a_writer_is_one_line cover ENOSPC")
    try:
        p = cli(["gap", "--model", str(model), "--queries", "q.txt", "--no-benign", "--contrasts", "", "--n-boot",
                 "20", "--out", str(disk / "g")], d)
        lines = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
        assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr[-2000:]
        assert len(lines) == 1 and "no space left" in lines[0], p.stderr[-2000:]
        assert temps(disk) == []
        for f in disk.rglob("*.json"):
            json.loads(f.read_text())  # whatever was finished is whole
        assert not (disk / "g" / "plotly.min.js").exists() or (disk / "g" / "plotly.min.js").stat().st_size > 1 << 20
    finally:
        subprocess.run(["umount", str(disk)], check=False)
