"""Every benchmark script runs at a tiny size and prints its ``name: value`` lines (no timed assertion: the
numbers belong to ``benchmarks/RESULTS.md``, measured on a real size; here only that each line is there and
reads as a number), plus the shared harness's pairing and ratio arithmetic."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))

import harness  # noqa: E402

NUMBER = r"-?\d+(\.\d+)?(e[-+]?\d+)?"


def _run(script: str, *args: str, env: dict | None = None) -> str:
    p = subprocess.run([sys.executable, str(BENCH / script), *args], cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, timeout=1800)
    assert p.returncode == 0, p.stderr[-3000:]
    return p.stdout


def _lines(out: str, names: list[str]) -> dict[str, float]:
    got = {}
    for name in names:
        m = re.search(rf"^{name}: ({NUMBER})", out, re.M)
        assert m, f"{name} missing from:\n{out}"
        got[name] = float(m.group(1))
    assert re.search(rf"^load_average: start {NUMBER} end {NUMBER}", out, re.M), out
    return got


# -- the harness --------------------------------------------------------------------------------------------
def test_interleave_alternates_the_sides_and_pairs_their_repetitions():
    calls: list[str] = []
    t = harness.interleave({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3, warmup=1)
    assert calls == ["a", "b"] * 4 and [len(v) for v in t.values()] == [3, 3]


def test_ratio_is_the_median_of_paired_ratios_with_its_spread():
    T = harness.Timing
    den = [T(1.0, 2.0), T(1.0, 2.0), T(2.0, 4.0)]
    num = [T(1.5, 2.0), T(3.0, 8.0), T(2.0, 2.0)]
    r = harness.ratio(num, den, "wall")
    assert (r.median, r.lo, r.hi, r.n) == (1.5, 1.0, 3.0, 3)
    assert harness.ratio(num, den, "cpu").median == 1.0
    line = harness.ratio_line("x_over_y", num, den, clock="wall")
    assert line.startswith("x_over_y: 1.500 (min 1.000, max 3.000, 3 pairs, wall time; cpu 1.000)")
    assert re.fullmatch(rf"load_average: start {NUMBER} end {NUMBER} \(\d+ CPUs\)", harness.LoadAverage().line())


# -- each benchmark at a tiny size ---------------------------------------------------------------------------
@pytest.mark.slow
def test_real_benchmark_prints_every_line(tmp_path):
    from interp_af.testing.tiny import TinySpec, build_tiny_model

    model = build_tiny_model(tmp_path / "tiny-llama", TinySpec(arch="llama", n_ctx=16384))
    out = _run("real.py", "--model", str(model), "--queries", "1", "--reps", "1", "--scale-n", "1",
               "--patch-layers", "2", "--patch-positions", "2", "--exact-layers", "1", "--long-system", "x2",
               "--study", str(tmp_path / "absent.toml"))
    got = _lines(out, ["gap_over_forward", "default_backend_over_hf", "nnsight_over_hf", "capture_over_forward",
                       "capture_rss_ratio_10x", "patch_speedup", "patch_speedup_per_cell", "patch_max_abs_diff",
                       "atp_forward_equivalents",
                       "atp_spearman_head_out", "atp_spearman_resid_pre", "atp_spearman_mlp_out"])
    assert got["patch_max_abs_diff"] < 1e-4   # the same cells through TL's helper and the toolkit's sweep
    assert "study_minutes: not measured" in out
    assert "| 10x prompts | 20 |" in out and "| ~2x length | 2 |" in out   # the scaling table's rows


@pytest.mark.slow
def test_patching_benchmark_prints_every_line():
    out = _run("patching.py", "--tiny", "--reps", "1")
    got = _lines(out, ["patch_speedup", "patch_max_abs_diff", "atp_forward_equivalents", "atp_spearman_heads",
                       "atp_spearman_resid", "atp_spearman_mlp", "ig_spearman_resid"])
    assert got["patch_max_abs_diff"] < 1e-4


@pytest.mark.slow
def test_capture_benchmark_prints_every_line(tmp_path):
    out = _run("capture.py", "--only", "llama-tiny", "--big", "llama-tiny", "--n", "2", "--reps", "1",
               "--batch-size", "2", "--no-nnsight", env={"INTERP_AF_BENCH_CACHE": str(tmp_path)})
    _lines(out, ["capture_over_forward", "capture_speedup_vs_run_with_cache", "capture_rss_ratio_10x"])


@pytest.mark.slow
def test_probes_benchmark_prints_every_line():
    out = _run("probes.py", "--quick", "--widths", "organism", "--reps", "1")
    got = _lines(out, ["probe_auroc_max_diff", "probe_speedup"])
    assert got["probe_auroc_max_diff"] < 0.05
