"""Owned folders: the toolkit only ever removes or replaces what it wrote itself.

A command that writes results creates (or accepts) its output folder with :func:`claim_dir`, which puts an
**ownership marker** in it: ``.interp_af.json``, recording what wrote the folder, the toolkit version and when.
From then on the marker is the proof that the folder is the toolkit's to clear:

- :func:`claim_dir` creates the folder, or accepts it when it is empty or already owned. A non-empty folder
  without the marker is refused in one line: it holds someone's files. With ``allow_foreign=True`` the toolkit
  writes *beside* those files; their names are listed in the marker as *foreign* and are never deleted.
- :func:`remove_owned` and :func:`replace_owned` only remove what the toolkit wrote. A folder without the
  marker is never removed (not even inside an owned folder: every folder the toolkit creates gets its own
  marker, so an unmarked one is someone else's); a foreign-listed entry is never deleted; a file is deleted
  only inside an owned folder. What is kept is returned, so a caller can say so.
- :func:`check_name` makes sure a run name is a name, not a path: a config's ``name = "../../victim"`` must
  never turn "clear my stage folder" into "clear someone else's folder".

What the marker cannot know: a file a person drops into an owned folder *after* the toolkit claimed it looks
like the toolkit's. The folders are documented as the toolkit's working folders for that reason.
"""

from __future__ import annotations

import json
import os
import secrets
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from interp_af import atomic
from interp_af.errors import InterpAFError

__all__ = ["MARKER", "LOCK", "Ownership", "owner", "is_owned", "claim_dir", "ensure_dir", "adopt_dir",
           "check_removable", "remove_owned", "replace_owned", "check_name", "writer_lock"]

MARKER = ".interp_af.json"
LOCK = ".lock"
FORMAT = "interp_af.owned"


@dataclass(frozen=True)
class Ownership:
    """What the marker says: which command wrote the folder, with which version, when, and which entries were
    already there (foreign: never deleted)."""

    what: str
    version: str
    created: str
    foreign: tuple[str, ...] = ()


def _version() -> str:
    from interp_af import __version__

    return __version__


def owner(path: str | Path) -> Ownership | None:
    """The ownership record of folder ``path`` (None: not a folder, no marker, or a marker that is not ours)."""
    f = Path(path) / MARKER
    try:
        if f.is_symlink() or not f.is_file():
            return None
        doc = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        return None
    foreign = doc.get("foreign") or []
    return Ownership(str(doc.get("what", "")), str(doc.get("version", "")), str(doc.get("created", "")),
                     tuple(str(x) for x in foreign) if isinstance(foreign, list) else ())


def is_owned(path: str | Path) -> bool:
    return owner(path) is not None


def _write_marker(path: Path, what: str, foreign: list[str]) -> None:
    doc = {"format": FORMAT, "what": what, "version": _version(),
           "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "foreign": sorted(foreign),
           "note": "written by interp_af: it may remove or replace what it wrote here, never the foreign entries"}
    atomic.write_json(path / MARKER, doc)


def _entries(path: Path) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError as err:
        raise atomic.os_error(err, path, "reading") from err


def claim_dir(path: str | Path, *, what: str, allow_foreign: bool = False, hint: str | None = None) -> Path:
    """Create folder ``path`` for command ``what`` (e.g. ``"capture"``), or accept it when empty or already owned.

    A non-empty folder without the marker is refused with one line (``hint`` replaces the default fix, e.g. to
    name a command-line flag), unless ``allow_foreign``: then its current entries are recorded as foreign and
    the toolkit writes beside them, never deleting them. Returns ``path``.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InterpAFError(f"output path {p} is a file, not a folder; choose a folder path for the {what} output")
    if p.is_dir():
        if owner(p) is not None:
            return p
        names = _entries(p)
        if names and all(atomic.is_stale_temp(n) for n in names):
            # only the temporary files of a killed writer (e.g. of this very marker): ours by name, never whole
            atomic.remove_stale_temps(p, recursive=False)
            names = _entries(p)
        if names and not allow_foreign:
            shown = ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")
            fix = hint or ("choose a new or empty folder, or allow writing beside those files (allow_foreign=True; "
                           "they are never deleted)")
            raise InterpAFError(f"folder {p} is not empty and was not written by interp_af ({len(names)} "
                                f"entr{'y' if len(names) == 1 else 'ies'}: {shown}); {fix}")
        _write_marker(p, what, names)
        return p
    try:
        p.mkdir(parents=True)
    except FileExistsError:  # created by a concurrent claimer between the check and here: claim it the same way
        return claim_dir(p, what=what, allow_foreign=allow_foreign, hint=hint)
    except OSError as err:
        raise atomic.os_error(err, p, "creating") from err
    _write_marker(p, what, [])
    return p


def ensure_dir(path: str | Path, *, what: str) -> Path:
    """Make sure folder ``path`` exists, for a function that saves named files into a folder it was given
    (``GapResult.save(folder)``). Every level this call creates gets a marker, so a later clean-up of an owned
    folder above may remove it; a folder that exists is used as is (files go beside what it holds, nothing is
    deleted). Unlike :func:`claim_dir` it does not refuse a foreign folder: the caller names its files."""
    p = Path(path)
    missing: list[Path] = []
    q = p
    while not q.exists() and not q.is_symlink() and q != q.parent:
        missing.append(q)
        q = q.parent
    if q.exists() and not q.is_dir():
        raise InterpAFError(f"{q} is a file, so folder {p} cannot be created there; choose another output path")
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            continue  # a concurrent writer made it
        except OSError as err:
            raise atomic.os_error(err, d, "creating") from err
        _write_marker(d, what, [])
    return p


def adopt_dir(path: str | Path, *, what: str) -> Path:
    """Mark an existing folder as the toolkit's without listing foreign entries. Only for folders whose content
    the caller has just recognised as its own (a capture written before markers existed, with a valid
    manifest); the caller's own clean-up still names the files it removes."""
    p = Path(path)
    if owner(p) is None:
        _write_marker(p, what, [])
    return p


def _kept(d: Path, rec: Ownership) -> list[Path]:
    """What :func:`remove_owned` would have to keep inside owned folder ``d``."""
    kept: list[Path] = []
    foreign = set(rec.foreign)
    for name in _entries(d):
        e = d / name
        if name == MARKER:
            continue
        if name in foreign:
            kept.append(e)
        elif e.is_dir() and not e.is_symlink():
            sub = owner(e)
            kept.extend([e] if sub is None else _kept(e, sub))
    return kept


def _refusal(path: Path, why: str) -> InterpAFError:
    return InterpAFError(f"{path} {why}; interp_af never deletes what it did not write: move it away or choose "
                         f"another output folder")


def check_removable(path: str | Path) -> None:
    """Raise the one-line error :func:`remove_owned` would raise for ``path`` (without touching anything), so a
    command can refuse before it computes anything."""
    p = Path(path)
    if not p.exists() and not p.is_symlink():
        return
    if p.name == MARKER:
        raise _refusal(p, "is an ownership marker")
    if p.is_dir() and not p.is_symlink():
        if owner(p) is None:
            raise _refusal(p, f"was not written by interp_af (it has no {MARKER} marker)")
        return
    rec = owner(p.parent)
    if rec is None:
        raise _refusal(p, f"is not inside a folder written by interp_af (no {MARKER} beside it)")
    if p.name in rec.foreign:
        raise _refusal(p, "was already there when interp_af took the folder (listed as foreign)")


def _clear(d: Path, rec: Ownership) -> bool:
    """Remove everything the toolkit wrote inside owned folder ``d``; True if ``d`` itself is gone."""
    keep = False
    foreign = set(rec.foreign)
    for name in _entries(d):
        e = d / name
        if name == MARKER:
            continue
        if name in foreign:
            keep = True
        elif e.is_symlink() or not e.is_dir():
            e.unlink(missing_ok=True)  # a link is removed, never followed
        else:
            sub = owner(e)
            if sub is None or not _clear(e, sub):
                keep = True  # a folder without a marker is never removed
    if keep:
        return False
    (d / MARKER).unlink(missing_ok=True)
    d.rmdir()
    return True


def remove_owned(path: str | Path) -> tuple[Path, ...]:
    """Remove ``path`` (a folder with the marker, or a file inside one) as far as the toolkit wrote it.

    Returns what had to be kept (foreign-listed entries, unmarked sub-folders); empty means ``path`` is gone.
    Refuses in one line a folder without the marker, or a file outside an owned folder or listed as foreign.
    A missing ``path`` is not an error.
    """
    p = Path(path)
    check_removable(p)
    if not p.exists() and not p.is_symlink():
        return ()
    try:
        if p.is_symlink() or not p.is_dir():
            p.unlink()
            return ()
        rec = owner(p)
        assert rec is not None  # check_removable made sure
        kept = tuple(_kept(p, rec))
        _clear(p, rec)
    except OSError as err:
        raise atomic.os_error(err, p, "removing") from err
    atomic.fsync_dir(p.parent)
    return kept


def replace_owned(target: str | Path, new: str | Path, *, what: str | None = None) -> Path:
    """Move ``new`` (a file or folder the toolkit has just written, on the same filesystem) into ``target``'s
    place, removing the old ``target`` only if the toolkit wrote it.

    A folder ``new`` without a marker is given one (``what``). An existing folder ``target`` must be owned and
    hold nothing foreign (else one line naming what is in the way, and nothing is touched); an existing file
    ``target`` must sit in an owned folder. Files are replaced atomically (``os.replace``); a folder is swapped
    by two renames (the old one parked under a hidden name, then removed).
    """
    t, n = Path(target), Path(new)
    if not n.exists():
        raise InterpAFError(f"cannot put {n} in place of {t}: {n} does not exist (nothing was written)")
    if n.is_dir() and owner(n) is None:
        _write_marker(n, what or "interp_af", [])
    try:
        if not t.exists() and not t.is_symlink():
            os.replace(n, t)
        elif t.is_dir() and not t.is_symlink():
            if not n.is_dir():
                raise InterpAFError(f"cannot replace folder {t} with file {n}; remove the folder or write a folder")
            check_removable(t)
            in_way = _kept(t, owner(t))  # type: ignore[arg-type]
            if in_way:
                raise _refusal(in_way[0], f"is in the way of replacing {t} (interp_af did not write it)")
            parked = t.with_name(f".{t.name}.old-{os.getpid()}-{secrets.token_hex(3)}")
            os.replace(t, parked)
            os.replace(n, t)
            remove_owned(parked)
        else:
            if n.is_dir():
                raise InterpAFError(f"cannot replace file {t} with folder {n}; choose another output path")
            check_removable(t)
            os.replace(n, t)
    except OSError as err:
        raise atomic.os_error(err, t, "replacing") from err
    atomic.fsync_dir(t.parent)
    return t


def check_name(name: object, *, what: str = "run name") -> str:
    """``name`` if it is a plain name (one path component), else a one-line error: no ``/`` or ``\\``, not ``.``
    or ``..``, not absolute, not empty, no leading/trailing blanks or control characters."""
    example = "such as 'my-study'"
    if not isinstance(name, str) or not name.strip():
        raise InterpAFError(f"{what} {name!r} is empty; give a plain name {example}")
    if (name in (".", "..") or "/" in name or "\\" in name or os.path.isabs(name) or name.startswith("~")
            or (len(name) > 1 and name[1] == ":")):
        raise InterpAFError(f"{what} {name!r} is a path, not a name; give a plain name {example} (no '/', '\\', "
                            f"'..' or drive): the folder it names is created inside the output folder")
    if name != name.strip() or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InterpAFError(f"{what} {name!r} has leading/trailing blanks or control characters; give a plain "
                            f"name {example}")
    return name


@contextmanager
def writer_lock(path: str | Path, *, what: str, hint: str = "wait for it to finish or choose another --out") -> Iterator[None]:
    """One writer per owned folder ``path`` (e.g. a run folder): a second one is refused in one line instead of
    both writing the same files. ``flock`` is released by the kernel when the holder dies, ``kill -9``
    included, so a crash never leaves the folder locked; the lock file stays (it holds nothing)."""
    import fcntl

    p = Path(path)
    try:
        fh = open(p / LOCK, "a")
    except OSError as err:
        raise atomic.os_error(err, p / LOCK, "creating") from err
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InterpAFError(f"another {what} is writing to {p}; {hint}") from None
        yield
    finally:
        fh.close()
