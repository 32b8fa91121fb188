"""Reading the text files users bring (query sets, prompt files, configs), with one-line errors.

Every such file must be UTF-8 (a byte-order mark, as spreadsheets write, is accepted and dropped). A file in
another encoding (Windows-1252, Latin-1, UTF-16 from a Windows editor) is refused with its name, the byte
where decoding failed, and how to convert it, instead of a ``UnicodeDecodeError`` traceback; a missing file,
a folder or an unreadable file likewise.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from interp_af.errors import InterpAFError

__all__ = ["read_text"]


def _guess(raw: bytes) -> str:
    """A likely source encoding, for the fix in the message (a guess, never used to decode)."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if raw[:200].count(b"\x00") > 10:
        return "utf-16"
    return "cp1252"


def read_text(path: str | Path, *, what: str = "file", expect: str = "a UTF-8 text file") -> str:
    """The text of ``path`` decoded as UTF-8 (BOM dropped). ``what`` names the file in errors ("query file");
    ``expect`` says what should have been given ("a CSV, JSONL or text file of requests")."""
    p = Path(path)
    if not p.exists():
        raise InterpAFError(f"{what} {p} does not exist; pass the path of {expect}")
    if p.is_dir():
        raise InterpAFError(f"{what} {p} is a directory; pass the path of {expect}")
    try:
        raw = p.read_bytes()
    except OSError as err:
        raise InterpAFError(f"{what} {p} cannot be read ({err.strerror}); check its permissions") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        enc = _guess(raw)
        raise InterpAFError(
            f"{what} {p} is not UTF-8 text (byte 0x{raw[err.start]:02x} at line {line}); re-save it as UTF-8, "
            f"e.g. `iconv -f {enc} -t utf-8 {p} > fixed{p.suffix}`"
        ) from None
