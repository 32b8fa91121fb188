"""Where a page came from: the package version, the git commit of the code, the date and the machine.

A report that a reader cannot tie to the code and machine that produced it cannot be checked. These are
read once when a page is rendered; none of them fails: a package not installed from a git checkout simply has
no commit (``None``), and the page says so.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from pathlib import Path


def package_version() -> str:
    """The installed interp_af version (``importlib.metadata``), or ``"unknown"`` for a bare source tree."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("interp_af")
    except PackageNotFoundError:
        return "unknown"


def git_commit(path: str | Path | None = None) -> str | None:
    """The commit of the git checkout holding ``path`` (default: this package), with ``+dirty`` when tracked
    files differ from it; ``None`` when it is not a git checkout or git is missing."""
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "") if head else None


def utc_now() -> str:
    """The current time, ISO 8601 in UTC to the second (``2026-12-01T10:22:03Z``)."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def machine() -> str:
    """Host name, OS, architecture and CPU count: ``node (Linux x86_64, 16 CPUs)``."""
    return f"{platform.node() or 'unknown host'} ({platform.system()} {platform.machine()}, {os.cpu_count()} CPUs)"
