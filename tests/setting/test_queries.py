"""Query loaders: AdvBench CSV, JSONL, text; the benign set; one-line errors for bad files."""

import json

import pytest

from interp_af.errors import InterpAFError
from interp_af.setting.queries import ADVBENCH, benign_queries, load_queries


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_real_advbench(advbench_path):
    path = advbench_path or ADVBENCH
    qs = load_queries(path)
    assert len(qs) == 520
    assert qs[0].id == "advbench-0000" and qs[7].id == "advbench-0007"
    assert qs[0].text.startswith("Write a script that can exploit vulnerabilities")
    assert all(q.harmful for q in qs) and len({q.id for q in qs}) == 520
    assert not any(q.text.lower().startswith("sure, here") for q in qs)
    assert [q.text for q in load_queries(path, limit=100)] == [q.text for q in qs[:100]]


def test_bundled_default_matches_shared_copy(advbench_path):
    bundled = load_queries()
    assert len(bundled) == 520 and bundled[0].source == "advbench_harmful_behaviors.csv"
    if advbench_path is not None:
        assert [q.text for q in bundled] == [q.text for q in load_queries(advbench_path)]


def test_benign_set():
    qs = benign_queries()
    assert 30 <= len(qs) <= 50
    assert not any(q.harmful for q in qs)
    assert len({q.text for q in qs}) == len(qs) and qs[0].id == "benign-000"
    assert qs[0].source == "builtin-benign"
    assert len(benign_queries(5)) == 5


def test_jsonl_keys_and_ids(tmp_path):
    p = tmp_path / "q.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in [{"goal": "a b"}, {"text": "c d"}, {"prompt": "e f"}]) + "\n")
    assert [q.text for q in load_queries(p)] == ["a b", "c d", "e f"]
    assert load_queries(p)[1].id == "q-0001"
    p2 = tmp_path / "ids.jsonl"
    p2.write_text(json.dumps({"id": "x1", "goal": "g"}) + "\n" + json.dumps({"id": "x2", "goal": "h"}) + "\n")
    assert [q.id for q in load_queries(p2)] == ["x1", "x2"]


def test_json_list_and_text(tmp_path):
    p = tmp_path / "q.json"
    p.write_text(json.dumps([{"goal": "one"}, "two"]))
    assert [q.text for q in load_queries(p)] == ["one", "two"]
    t = tmp_path / "q.txt"
    t.write_text("# comment\nfirst request\n\n  second request  \n")
    qs = load_queries(t, harmful=False)
    assert [q.text for q in qs] == ["first request", "second request"] and not qs[0].harmful


def test_csv_other_column(tmp_path):
    p = tmp_path / "mine.csv"
    p.write_text("request,category\nDo a thing,x\nDo another,y\n")
    assert [q.text for q in load_queries(p, column="request")] == ["Do a thing", "Do another"]
    t = tmp_path / "mine.tsv"
    t.write_text("goal\tnote\nDo, with a comma\tx\n")
    assert [q.text for q in load_queries(t)] == ["Do, with a comma"]


@pytest.mark.parametrize("case", ["missing", "empty", "dir", "header_only"])
def test_bad_files(tmp_path, case):
    p = tmp_path / "q.csv"
    if case == "empty":
        p.write_text("  \n")
    elif case == "dir":
        p.mkdir()
    elif case == "header_only":
        p.write_text("goal,target\n")
    with pytest.raises(InterpAFError) as err:
        load_queries(p)
    msg = _one_line(err)
    assert str(p) in msg
    assert {"missing": "does not exist", "empty": "is empty", "dir": "directory", "header_only": "no requests"}[case] in msg


def test_missing_column_lists_columns(tmp_path):
    p = tmp_path / "q.csv"
    p.write_text("prompt_id,behaviour\n1,x\n")
    with pytest.raises(InterpAFError) as err:
        load_queries(p)
    msg = _one_line(err)
    assert "'goal'" in msg and "prompt_id, behaviour" in msg and str(p) in msg


def test_headerless_copy_is_detected(tmp_path, advbench_path):
    src = (advbench_path or ADVBENCH).read_text().splitlines()
    p = tmp_path / "advbench_noheader.csv"
    p.write_text("\n".join(src[1:]) + "\n")  # the popular copy whose header line is a data row
    with pytest.raises(InterpAFError) as err:
        load_queries(p)
    assert "looks like a request, not a header" in _one_line(err)
    qs = load_queries(p, header=False)
    assert len(qs) == 520 and qs[0].text.startswith("Write a script")


def test_swapped_columns_are_detected(tmp_path, advbench_path):
    src = (advbench_path or ADVBENCH).read_text().splitlines()
    p = tmp_path / "swapped.csv"
    p.write_text("\n".join(["target,goal", *src[1:]]) + "\n")
    with pytest.raises(InterpAFError) as err:
        load_queries(p)
    msg = _one_line(err)
    assert "swapped" in msg and "column='target'" in msg
    assert load_queries(p, column="target")[0].text.startswith("Write a script")


def test_bad_jsonl(tmp_path):
    p = tmp_path / "q.jsonl"
    p.write_text('{"goal": "ok"}\n{not json}\n')
    with pytest.raises(InterpAFError) as err:
        load_queries(p)
    assert "line 2" in _one_line(err)
    p.write_text('{"question": "x"}\n')
    with pytest.raises(InterpAFError) as err:
        load_queries(p)
    assert "keys found: question" in _one_line(err)
