"""Atomic writes: a file on disk is either the old version or the complete new one, never half of either.

Every file the toolkit writes goes through here. The recipe is the POSIX one: write a temporary file in the
*same folder* (so the final rename never crosses a filesystem), ``fsync`` it, ``os.replace`` it over the target
(atomic on POSIX and Windows), then ``fsync`` the folder so the rename itself survives a power cut. What makes
it worth a module rather than five lines at each call site:

- **Nothing half-written is left, whatever stops the write**: an exception, ``KeyboardInterrupt`` (Ctrl-C),
  a full disk (``ENOSPC``, which often surfaces only at ``fsync`` or ``close``) all remove the temporary file
  before the error travels on. Only ``kill -9`` or a power cut can leave one behind, and those are named so that
  :func:`remove_stale_temps` can recognise and clear them when the killed run is resumed.
- **One line for the user**: a full disk, a folder without write permission, a read-only filesystem or a path
  that runs through a file become an :class:`~interp_af.errors.InterpAFError` that names the path and the fix,
  not a traceback after an hour of computation.

Temporary names are ``.<name>.tmp-<pid>-<random>``: hidden, beside the target, and carrying the writer's PID
so a later run can tell a dead writer's leftovers from a live writer's file.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from interp_af.errors import InterpAFError

__all__ = ["write_chunks", "write_bytes", "write_text", "write_json", "write_safetensors", "atomic_path", "fsync_dir",
           "os_error", "is_user_os_error", "remove_stale_temps", "is_temp_name", "is_stale_temp", "temp_name"]

_TMP = re.compile(r"^\..+\.tmp-(?P<pid>\d+)(?:-[0-9a-f]+)?$")

# errno -> (what happened, the fix); anything else keeps its OS wording
_FIXES: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("no space left on the device", "free some space or choose a folder on another disk"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or choose a folder on another disk"),
    errno.EACCES: ("permission denied", "choose a folder you can write to, or fix its permissions"),
    errno.EPERM: ("operation not permitted", "choose a folder you can write to, or fix its permissions"),
    errno.EROFS: ("read-only filesystem", "choose a folder on a writable disk"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "choose a path whose parents are folders"),
    errno.EISDIR: ("it is a folder", "give the path of a file, not of a folder"),
    errno.ENAMETOOLONG: ("the name is too long", "choose a shorter path"),
}


def os_error(err: OSError, path: str | Path, action: str = "writing") -> InterpAFError:
    """A one-line :class:`InterpAFError` for an ``OSError`` met while ``action`` ``path`` (naming both the path and
    the fix). Callers ``raise os_error(err, path) from err`` so ``--debug`` still shows the original."""
    what, fix = _FIXES.get(err.errno or -1, (err.strerror or type(err).__name__, "check the path and try again"))
    return InterpAFError(f"cannot finish {action} {path}: {what}; {fix}")


def is_user_os_error(err: OSError) -> bool:
    """Is ``err`` one a user can fix (disk full, permissions, read-only disk, a bad path) rather than a bug?"""
    return (err.errno or -1) in _FIXES


def temp_name(path: Path) -> Path:
    """The temporary sibling a write of ``path`` goes through (hidden; PID + random so writers never collide)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(3)}")


def is_temp_name(name: str) -> bool:
    """Is ``name`` a temporary file name this module (or the capture writer before it) produces?"""
    return _TMP.match(name) is not None


def is_stale_temp(name: str) -> bool:
    """Is ``name`` a temporary file of a writer that is gone (killed before its rename)?"""
    m = _TMP.match(name)
    return m is not None and not _pid_alive(int(m["pid"]))


def fsync_dir(d: str | Path) -> None:
    """Make a rename in ``d`` durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems (FUSE, network mounts) refuse fsync on a folder: the rename still happened
        pass
    finally:
        os.close(fd)


def write_chunks(path: str | Path, chunks: Iterable[bytes | memoryview]) -> str:
    """Write the concatenation of ``chunks`` to ``path`` atomically; return its sha256 (hex).

    ``chunks`` may be a generator that streams a large file: nothing is held in memory beyond one chunk.
    """
    path = Path(path)
    tmp = temp_name(path)
    digest = hashlib.sha256()
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # mode is masked by the umask, as open() does
        with os.fdopen(fd, "wb") as f:
            for c in chunks:
                digest.update(c)
                f.write(c)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:  # Ctrl-C and disk-full included: never leave the temporary file behind
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if isinstance(err, OSError):
            raise os_error(err, path) from err
        raise
    fsync_dir(path.parent)
    return digest.hexdigest()


def write_bytes(path: str | Path, data: bytes | memoryview) -> Path:
    """Write ``data`` to ``path`` atomically."""
    write_chunks(path, [data])
    return Path(path)


def write_text(path: str | Path, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8 unless told otherwise)."""
    return write_bytes(path, text.encode(encoding))


def write_json(path: str | Path, obj: Any, *, indent: int | None = 2, sort_keys: bool = False,
               default: Any = None) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically (``default`` as in :func:`json.dumps`). The JSON is encoded
    in memory first, so an object that cannot be serialised fails before anything touches the disk."""
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, default=default)
    return write_text(path, text + ("\n" if indent is not None else ""))


def write_safetensors(path: str | Path, tensors: dict, metadata: dict[str, str] | None = None) -> str:
    """Write ``{name: tensor}`` as a safetensors file atomically (the library serialises to bytes in memory,
    which suits the small result tensors this is for); return its sha256. Big streamed arrays use
    :mod:`interp_af.acts.sfio` instead."""
    from safetensors.torch import save

    return write_chunks(path, [save({k: v.contiguous() for k, v in tensors.items()}, metadata=metadata)])


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """For libraries that write by file name (``safetensors.torch.save_file``, ``fig.write_html``): yields a
    temporary path beside ``path``; when the block ends normally it is fsync'ed and renamed over ``path``, when
    it raises (anything, Ctrl-C included) it is removed. An ``OSError`` becomes a one-line error naming ``path``.
    """
    path = Path(path)
    tmp = temp_name(path)
    try:
        yield tmp
        if not tmp.exists():
            raise InterpAFError(f"nothing was written to {path}; the writer produced no file")
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as err:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if isinstance(err, OSError):
            raise os_error(err, path) from err
        raise
    fsync_dir(path.parent)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        # our own PID on a leftover means the PID was reused after a kill (containers restart from low PIDs):
        # this process writes no temporary file outside a call to this module, so the file is stale
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # the process exists, under another user
        return True
    except OSError:
        return False
    return True


def remove_stale_temps(folder: str | Path, *, recursive: bool = True, keep: Iterable[str] = ()) -> list[Path]:
    """Remove the temporary files of killed writers from ``folder`` (and its sub-folders); return what went.

    Only names this module produces (``.<name>.tmp-<pid>[-<hex>]``) whose writer process is gone are touched, so
    a live writer's file and every file the toolkit did not write are left alone; ``keep`` names entries of
    ``folder`` itself never to touch (foreign ones). Call it where the caller holds the folder's write lock (the
    capture writer does, at resume and when it finishes)."""
    kept = set(keep)
    gone: list[Path] = []
    root = Path(folder)
    if not root.is_dir():
        return gone
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            if d == root and e.name in kept:
                continue
            if e.is_dir(follow_symlinks=False):
                if recursive:
                    stack.append(Path(e.path))
                continue
            m = _TMP.match(e.name)
            if m and e.is_file(follow_symlinks=False) and not _pid_alive(int(m["pid"])):
                try:
                    os.unlink(e.path)
                    gone.append(Path(e.path))
                except FileNotFoundError:
                    pass
    return gone
