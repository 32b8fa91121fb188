"""Atomic writes: nothing half-written on any failure (exception, Ctrl-C, disk full), one-line OS errors, and the
killed-writer temp files recognised and cleared."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from interp_af import atomic
from interp_af.errors import InterpAFError

ROOT = Path(__file__).resolve().parents[1]


def entries(d: Path) -> list[str]:
    return sorted(os.listdir(d))


def test_writes_and_replaces(tmp_path):
    f = tmp_path / "a.json"
    atomic.write_json(f, {"x": 1})
    assert f.read_text() == '{\n  "x": 1\n}\n'
    atomic.write_text(f, "new")
    assert f.read_text() == "new" and entries(tmp_path) == ["a.json"]
    sha = atomic.write_chunks(tmp_path / "b.bin", [b"ab", memoryview(b"cd")])
    import hashlib

    assert sha == hashlib.sha256(b"abcd").hexdigest() and (tmp_path / "b.bin").read_bytes() == b"abcd"


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt(), OSError(errno.ENOSPC, "No space left")])
def test_failure_mid_write_leaves_old_file_and_no_temp(tmp_path, exc):
    f = tmp_path / "r.json"
    f.write_text("old")

    def chunks():
        yield b"partial"
        raise exc

    with pytest.raises((type(exc), InterpAFError)) as err:
        atomic.write_chunks(f, chunks())
    assert f.read_text() == "old" and entries(tmp_path) == ["r.json"]
    if isinstance(exc, OSError):  # the OS error is one line naming the file and the fix
        msg = str(err.value)
        assert isinstance(err.value, InterpAFError) and "\n" not in msg
        assert str(f) in msg and "no space left" in msg and "free some space" in msg


def test_unserialisable_json_touches_nothing(tmp_path):
    with pytest.raises(TypeError):
        atomic.write_json(tmp_path / "x.json", {"a": object()})
    assert entries(tmp_path) == []


def test_os_errors_are_one_line(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InterpAFError, match=r"a part of the path is a file, not a folder") as err:
        atomic.write_text(tmp_path / "file" / "sub.json", "{}")
    assert "\n" not in str(err.value) and str(tmp_path / "file" / "sub.json") in str(err.value)
    (tmp_path / "adir").mkdir()
    with pytest.raises(InterpAFError, match="it is a folder"):  # `prompts --out adir` used to leave adir.tmp
        atomic.write_text(tmp_path / "adir", "{}")
    assert entries(tmp_path) == ["adir", "file"] and entries(tmp_path / "adir") == []

    # EACCES: the tests run as root, which ignores permission bits, so the OS answer is simulated
    real_open = os.open

    def denied(path, flags, *a, **k):
        if "locked" in str(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *a, **k)

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(InterpAFError, match=r"permission denied; choose a folder you can write to"):
        atomic.write_text(tmp_path / "locked.json", "{}")


def test_atomic_path_for_library_writers(tmp_path):
    target = tmp_path / "fig.html"
    with atomic.atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and atomic.is_temp_name(tmp.name)
        tmp.write_text("<html>")
    assert target.read_text() == "<html>" and entries(tmp_path) == ["fig.html"]
    with pytest.raises(KeyboardInterrupt):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert target.read_text() == "<html>" and entries(tmp_path) == ["fig.html"]


def _mount_tmpfs(d: Path, size: str) -> bool:
    d.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(d)], capture_output=True)
    return proc.returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (needs permission to mount: root in a container that allows it)."""
    d = tmp_path / "disk"
    if not _mount_tmpfs(d, "1m"):
        pytest.skip("mounting a tmpfs is not permitted here; test_disk_full_simulated covers ENOSPC by monkeypatch")
    yield d
    subprocess.run(["umount", str(d)], check=False)


def test_disk_full_on_a_real_small_tmpfs(small_disk):
    keep = small_disk / "result.bin"
    atomic.write_bytes(keep, b"x" * 1000)
    with pytest.raises(InterpAFError) as err:
        atomic.write_chunks(small_disk / "big.bin", (b"\0" * (256 << 10) for _ in range(8)))  # 2 MiB > 1 MiB
    msg = str(err.value)
    assert "\n" not in msg and "no space left on the device" in msg and str(small_disk / "big.bin") in msg
    assert entries(small_disk) == ["result.bin"] and keep.read_bytes() == b"x" * 1000  # no temp, old file intact
    # overwriting an existing file on the full disk keeps the old version
    with pytest.raises(InterpAFError, match="no space left"):
        atomic.write_chunks(keep, (b"\0" * (256 << 10) for _ in range(8)))
    assert keep.read_bytes() == b"x" * 1000 and entries(small_disk) == ["result.bin"]


def test_disk_full_simulated(tmp_path, monkeypatch):
    """ENOSPC at fsync (where delayed allocation reports it) still removes the temporary file."""
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(InterpAFError, match="no space left on the device; free some space"):
        atomic.write_text(tmp_path / "x.json", "{}")
    assert entries(tmp_path) == []


def test_stale_temps_of_dead_writers_are_cleared(tmp_path):
    # a writer killed with -9 leaves its temporary file; simulate one by killing a real process mid-write
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        from interp_af import atomic
        def chunks():
            yield b"half"
            os.kill(os.getpid(), signal.SIGKILL)
        atomic.write_chunks({str(tmp_path / "acts.bin")!r}, chunks())
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".x.tmp-999999999").write_text("old-style name of a dead writer")
    (tmp_path / "notes.tmp-1").write_text("not our name: kept")
    live = tmp_path / f".y.tmp-{os.getppid()}-abcdef"   # a live process (our parent): kept
    live.write_text("live")
    orphans = [n for n in entries(tmp_path) if n.startswith(".acts.bin.tmp-")]
    assert len(orphans) == 1
    gone = atomic.remove_stale_temps(tmp_path)
    assert sorted(p.name for p in gone) == sorted([orphans[0], ".x.tmp-999999999"])
    assert entries(tmp_path) == sorted([live.name, "notes.tmp-1", "sub"]) and entries(tmp_path / "sub") == []
