"""Verified reads, cheaply: each file's sha256 is checked once, then trusted while its stat is unchanged.

Captures and probe artifacts record the sha256 of every file they consist of. A reader that skips the check
uses a flipped byte silently (different scores, exit 0), so every reader checks; to keep that cheap on a 50 GB
capture, a file that passed is remembered under its *stat key*: size, modification time, change time and inode
(``st_ctime_ns`` cannot be set back by a program, so an in-place edit that restores the mtime is still seen; a
copied folder has new inodes and is checked afresh). Two caches hold what passed:

- in this process, a dict (path -> stat key, sha256), so a file opened many times is hashed once;
- on disk, an optional :class:`Record` file beside the files (``.verified.json`` in a capture folder), so the
  next process does not hash either. The capture writer seeds it with the digests it computed while writing.
  Writing the record is best effort: a read-only capture is verified every time, never refused.

A file checked within :data:`RACY_NS` of its last change is not trusted later (git's "racily clean" rule):
filesystems stamp times with a coarse clock (a jiffy; 2 s on FAT), so an edit made in the same tick as the
check would leave the stat key unchanged. Such a file is simply hashed again by the next reader.

What this does not catch: corruption that leaves size, both times and the inode untouched (a disk's silent bit
rot). ``full=True`` ignores both caches and re-hashes.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from interp_af.errors import InterpAFError

__all__ = ["sha256_file", "stat_key", "Record", "verify_file", "remember", "forget_all"]

_CHUNK = 8 << 20
_MEMO: dict[str, tuple[tuple[int, int, int, int], str, int]] = {}  # realpath -> (stat key, sha256, checked at)
RECORD_FORMAT = "interp_af.verified"
RACY_NS = 3_000_000_000  # a check made less than this after the file's last change is not trusted later


def _settled(key: tuple[int, int, int, int], checked_ns: int) -> bool:
    """Was the file's last change (mtime or ctime) clearly before the check, so any later edit changes the key?"""
    return checked_ns - max(key[1], key[2]) > RACY_NS


def sha256_file(path: str | Path) -> str:
    """Streaming sha256 of a file (constant memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def stat_key(path: str | Path) -> tuple[int, int, int, int]:
    st = os.stat(path)
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


class Record:
    """The on-disk cache of one folder: ``{relative path: {sha256, size, mtime_ns, ctime_ns, ino}}``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._entries: dict[str, dict] | None = None
        self._dirty = False

    @property
    def entries(self) -> dict[str, dict]:
        if self._entries is None:
            try:
                doc = json.loads(self.path.read_text(encoding="utf-8"))
                ok = isinstance(doc, dict) and doc.get("format") == RECORD_FORMAT and isinstance(doc.get("files"), dict)
                self._entries = dict(doc["files"]) if ok else {}
            except (OSError, ValueError):
                self._entries = {}
        return self._entries

    def trusts(self, rel: str, key: tuple[int, int, int, int], sha256: str) -> bool:
        e = self.entries.get(rel)
        return (isinstance(e, dict) and e.get("sha256") == sha256
                and [e.get("size"), e.get("mtime_ns"), e.get("ctime_ns"), e.get("ino")] == list(key)
                and isinstance(e.get("checked_ns"), int) and _settled(key, e["checked_ns"]))

    def add(self, rel: str, key: tuple[int, int, int, int], sha256: str, checked_ns: int) -> None:
        if not _settled(key, checked_ns):
            return  # racily clean: recording it would let a same-tick edit pass later
        size, mtime, ctime, ino = key
        self.entries[rel] = {"sha256": sha256, "size": size, "mtime_ns": mtime, "ctime_ns": ctime, "ino": ino,
                             "checked_ns": checked_ns}
        self._dirty = True

    def save(self) -> None:
        """Write the record if it changed; any failure (read-only folder, full disk) is ignored: it is a cache."""
        if not self._dirty:
            return
        from interp_af import atomic

        doc = {"format": RECORD_FORMAT, "note": "cache of files whose sha256 was checked; safe to delete",
               "files": dict(sorted(self.entries.items()))}
        try:
            atomic.write_json(self.path, doc, indent=1)
            self._dirty = False
        except (InterpAFError, OSError):
            pass


def _rel(path: Path, record: Record | None) -> str:
    if record is None:
        return path.name
    try:
        return path.resolve().relative_to(record.path.parent.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def verify_file(path: str | Path, sha256: str, *, size: int | None = None, what: str = "file",
                hint: str = "regenerate it", record: Record | None = None, full: bool = False) -> None:
    """Check that ``path`` exists, has ``size`` bytes (when given) and hashes to ``sha256``; raise a one-line
    :class:`InterpAFError` naming the file and ``hint`` otherwise. Cached (see the module docstring) unless
    ``full``; ``record`` also consults and updates that folder's on-disk record (saved by the caller)."""
    p = Path(path)
    try:
        key = stat_key(p)
    except FileNotFoundError:
        raise InterpAFError(f"{what} {p} is missing; {hint}") from None
    except OSError as err:
        raise InterpAFError(f"{what} {p} cannot be read ({err.strerror}); {hint}") from None
    if size is not None and key[0] != int(size):
        raise InterpAFError(f"{what} {p} is truncated or corrupted ({key[0]} bytes, expected {size}); {hint}")
    real = str(p.resolve())
    rel = _rel(p, record)
    if not full:
        memo = _MEMO.get(real)
        if memo is not None and memo[:2] == (key, sha256) and _settled(key, memo[2]):
            return
        if record is not None and record.trusts(rel, key, sha256):
            _MEMO[real] = (key, sha256, record.entries[rel]["checked_ns"])
            return
    checked = time.time_ns()
    try:
        got = sha256_file(p)
    except OSError as err:
        raise InterpAFError(f"{what} {p} cannot be read ({err.strerror}); {hint}") from None
    if got != sha256:
        _MEMO.pop(real, None)
        raise InterpAFError(f"{what} {p} is corrupted (sha256 mismatch); {hint}")
    _MEMO[real] = (key, sha256, checked)
    if record is not None:
        record.add(rel, key, sha256, checked)


def remember(path: str | Path, sha256: str, *, record: Record | None = None) -> None:
    """Note that ``path``, as it is now, hashes to ``sha256`` (a writer that has just computed the digest while
    writing the file calls this, so the first reader need not hash it again)."""
    p = Path(path)
    checked = time.time_ns()
    key = stat_key(p)
    _MEMO[str(p.resolve())] = (key, sha256, checked)
    if record is not None:
        record.add(_rel(p, record), key, sha256, checked)


def forget_all() -> None:
    """Empty the in-process cache (tests; or after restoring files from a backup within one process)."""
    _MEMO.clear()
