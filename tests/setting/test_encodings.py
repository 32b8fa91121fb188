"""Non-UTF-8 query and prompt files are one line naming the file and the fix, not a UnicodeDecodeError."""

from __future__ import annotations

import pytest

from interp_af.errors import InterpAFError
from interp_af.setting.custom import load_prompt_file
from interp_af.setting.queries import load_queries
from interp_af.textio import read_text

LATIN1 = "goal,target\nÉcris un poème sur les rivières,Sure\n".encode("cp1252")
UTF16 = "goal,target\nWrite a poem,Sure\n".encode("utf-16")


@pytest.mark.parametrize("name,data", [
    ("q.csv", LATIN1),
    ("q.jsonl", '{"goal": "Écris"}\n'.encode("latin-1")),
    ("q.txt", "Écris un poème\n".encode("cp1252")),
    ("q16.csv", UTF16),
])
def test_non_utf8_query_file(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    with pytest.raises(InterpAFError) as err:
        load_queries(p)
    msg = str(err.value)
    assert "\n" not in msg and str(p) in msg and "not UTF-8" in msg and "iconv" in msg and "utf-8" in msg
    assert ("-f utf-16" in msg) == (name == "q16.csv")


def test_utf8_with_bom_is_fine(tmp_path):
    p = tmp_path / "bom.csv"
    p.write_bytes("\ufeffgoal,target\nWrite a poem about rivers,Sure\n".encode("utf-8"))
    assert [q.text for q in load_queries(p)] == ["Write a poem about rivers"]


def test_non_utf8_prompt_file(tmp_path):
    p = tmp_path / "system.txt"
    p.write_bytes("Vous êtes une IA. {tier}\n".encode("cp1252"))
    with pytest.raises(InterpAFError) as err:
        load_prompt_file(p)
    assert "\n" not in str(err.value) and "system prompt file" in str(err.value) and str(p) in str(err.value)
    u = tmp_path / "user.txt"
    u.write_bytes("{request} {tier} é".encode("cp1252"))
    s = tmp_path / "s.txt"
    s.write_text("System.")
    with pytest.raises(InterpAFError, match="user-turn template file .* is not UTF-8"):
        load_prompt_file(s, user_file=u)


def test_read_text_errors(tmp_path):
    with pytest.raises(InterpAFError, match="does not exist"):
        read_text(tmp_path / "none.txt", what="config file")
    with pytest.raises(InterpAFError, match="config file .* is a directory"):
        read_text(tmp_path, what="config file")
    f = tmp_path / "c.toml"
    f.write_bytes(b'name = "ok"\nnote = "caf\xe9"\n')
    with pytest.raises(InterpAFError, match=r"byte 0xe9 at line 2"):
        read_text(f, what="config file")
