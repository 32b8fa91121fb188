"""The measuring part every benchmark shares: interleaved repetitions, median ratios with their spread, process
CPU time beside wall time, and the machine's load average at start and end.

Why each piece. The benchmarks run on a CPU machine shared with other jobs, so:

- **interleaving** (A B A B ..., or A B C A B C for more sides): a burst of load from another job hits
  neighbouring repetitions of every side alike, instead of all repetitions of one side;
- **a median ratio of pairs** (each repetition of B over the repetition of A next to it), with its min and max:
  the spread says how much the figure can be trusted; a single best-of-N time hides it;
- **process CPU time** (all threads of this process, :func:`time.process_time`): other jobs stretch wall time
  at random but barely change the CPU seconds our own work needs, so CPU-time ratios are the fair measure of
  "how much more work" on a loaded machine (wall time is printed too; on an idle machine both agree). Caveat:
  threads that spin while waiting for a core also burn CPU time, so for very short calls (milliseconds, where
  thread start-up and spinning dominate) neither clock is reliable: time larger units of work instead;
- **one intra-op thread** for CPU figures taken on a loaded machine (:func:`set_threads`): torch's thread pool
  (one thread per core) waits at every parallel op until all its threads have run; when other jobs hold the
  cores, each op waits for a scheduler slice, and a small op (a 98-token forward of a d_model-256 model) slows
  down 10-30x at random (measured: a forward took 118-148 ms on one thread and 1.25-3.8 s median on two, at load
  7 on 2 cores). One thread never waits for another, so its CPU time is the work itself;
- **the load average** at start and end (``load_average: start X end Y``), so a figure taken on a loaded machine
  says so.

Usage::

    load = LoadAverage()
    sides = interleave({"forward": lambda: f(), "capture": lambda: g()}, reps=3)
    print(ratio_line("capture_over_forward", sides["capture"], sides["forward"]))
    print(load.line())
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence


@dataclass(frozen=True)
class Timing:
    """One timed call: wall seconds and process CPU seconds (all threads)."""

    wall: float
    cpu: float

    def get(self, clock: str) -> float:
        return self.cpu if clock == "cpu" else self.wall


class Clock:
    """Wall time and process CPU time of a ``with`` block (``.wall``, ``.cpu``, ``.timing``)."""

    def __init__(self, sync: Callable[[], None] | None = None) -> None:
        self.sync = sync

    def __enter__(self) -> "Clock":
        self.w0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.sync is not None:   # a GPU's queued work belongs to the block that queued it
            self.sync()
        self.wall, self.cpu = time.perf_counter() - self.w0, time.process_time() - self.c0

    @property
    def timing(self) -> Timing:
        return Timing(self.wall, self.cpu)


def timed(fn: Callable[[], Any], sync: Callable[[], None] | None = None) -> Timing:
    with Clock(sync) as c:
        fn()
    return c.timing


def interleave(sides: Mapping[str, Callable[[], Any]], reps: int, *, warmup: int = 1,
               sync: Callable[[], None] | None = None) -> dict[str, list[Timing]]:
    """Run every side ``reps`` times in round-robin order (A B A B ...), after ``warmup`` untimed rounds.
    -> {side: [Timing per repetition]}: repetition ``r`` of every side ran next to the others' ``r``."""
    for _ in range(warmup):
        for fn in sides.values():
            fn()
    out: dict[str, list[Timing]] = {k: [] for k in sides}
    for _ in range(reps):
        for k, fn in sides.items():
            out[k].append(timed(fn, sync))
    return out


@dataclass(frozen=True)
class Ratio:
    """The median of per-repetition ratios b[r] / a[r], their min and max, on one clock."""

    median: float
    lo: float
    hi: float
    n: int
    clock: str

    def __str__(self) -> str:
        return f"{self.median:.3f} (min {self.lo:.3f}, max {self.hi:.3f}, {self.n} pairs, {self.clock} time)"


def ratio(num: Sequence[Timing], den: Sequence[Timing], clock: str = "cpu") -> Ratio:
    """Median of the paired ratios num[r] / den[r] (the repetitions that ran side by side)."""
    rs = [n.get(clock) / max(d.get(clock), 1e-12) for n, d in zip(num, den)]
    return Ratio(statistics.median(rs), min(rs), max(rs), len(rs), clock)


def ratio_line(name: str, num: Sequence[Timing], den: Sequence[Timing], clock: str = "cpu", digits: int = 3) -> str:
    """``name: median`` followed by the spread and the other clock's median, e.g.
    ``capture_over_forward: 1.031 (min 1.010, max 1.060, 3 pairs, cpu time; wall 1.045)``."""
    r = ratio(num, den, clock)
    other = ratio(num, den, "wall" if clock == "cpu" else "cpu")
    return (f"{name}: {r.median:.{digits}f} (min {r.lo:.{digits}f}, max {r.hi:.{digits}f}, {r.n} pairs, "
            f"{clock} time; {other.clock} {other.median:.{digits}f})")


def median_seconds(ts: Sequence[Timing], clock: str = "cpu") -> float:
    return statistics.median(t.get(clock) for t in ts)


class LoadAverage:
    """The 1-minute load average when created and when :meth:`line` is called."""

    def __init__(self) -> None:
        self.start = _load1()

    def line(self) -> str:
        return f"load_average: start {self.start:.2f} end {_load1():.2f} ({os.cpu_count()} CPUs)"


def set_threads(n: int | None) -> str:
    """Set torch's intra-op threads (None/0: leave the default); -> a note for the benchmark's header."""
    import torch

    if n:
        torch.set_num_threads(n)
    return f"{torch.get_num_threads()} torch thread(s)"


def _load1() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:  # not every platform has one
        return float("nan")


# -- peak memory of one phase (Linux) ------------------------------------------------------------------------
def status_bytes(key: str) -> int:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in bytes; 0 where there is no /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (``VmHWM``), so that the next peak is the next phase's own (a
    loading spike before it would hide it otherwise). False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False
