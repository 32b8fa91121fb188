"""Owned folders: the toolkit removes or replaces only what it wrote; foreign files and unmarked folders survive
every call, and run names cannot be paths."""

from __future__ import annotations

import json
import os

import pytest

from interp_af import owned
from interp_af.errors import InterpAFError


def tree(d) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


def test_claim_creates_marks_and_accepts_owned_or_empty(tmp_path):
    d = owned.claim_dir(tmp_path / "a" / "run", what="run")
    rec = owned.owner(d)
    assert rec is not None and rec.what == "run" and rec.version and rec.created and rec.foreign == ()
    doc = json.loads((d / owned.MARKER).read_text())
    assert doc["format"] == "interp_af.owned"
    (d / "result.json").write_text("{}")
    assert owned.claim_dir(d, what="run") == d          # owned: accepted, marker untouched
    empty = tmp_path / "empty"
    empty.mkdir()
    owned.claim_dir(empty, what="capture")
    assert owned.is_owned(empty)


def test_claim_refuses_foreign_folder_in_one_line(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "important.txt").write_text("precious")
    with pytest.raises(InterpAFError) as err:
        owned.claim_dir(d, what="run")
    msg = str(err.value)
    assert "\n" not in msg and str(d) in msg and "important.txt" in msg and "not written by interp_af" in msg
    assert tree(d) == ["important.txt"]                  # nothing written
    with pytest.raises(InterpAFError, match="use --allow-foreign"):
        owned.claim_dir(d, what="run", hint="use --allow-foreign")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InterpAFError, match="is a file, not a folder"):
        owned.claim_dir(tmp_path / "afile", what="run")


def test_allow_foreign_writes_beside_and_never_deletes(tmp_path):
    d = tmp_path / "shared"
    (d / "notes").mkdir(parents=True)
    (d / "important.txt").write_text("precious")
    (d / "notes" / "n.txt").write_text("mine")
    owned.claim_dir(d, what="run", allow_foreign=True)
    assert owned.owner(d).foreign == ("important.txt", "notes")
    (d / "gap.json").write_text("{}")                    # the toolkit's output beside them
    kept = owned.remove_owned(d)
    assert sorted(p.name for p in kept) == ["important.txt", "notes"]
    assert tree(d) == [owned.MARKER, "important.txt", "notes", "notes/n.txt"]
    for name in ("important.txt", "notes"):
        with pytest.raises(InterpAFError, match="interp_af never deletes what it did not write"):
            owned.remove_owned(d / name)
    assert (d / "important.txt").read_text() == "precious"


def test_remove_owned_never_removes_unmarked_folders(tmp_path):
    run = owned.claim_dir(tmp_path / "run", what="run")
    gap = owned.claim_dir(run / "gap", what="stage gap")
    (gap / "gap.json").write_text("{}")
    owned.ensure_dir(gap / "default" / "forward", what="gap")
    (gap / "default" / "forward" / "gap.json").write_text("{}")
    stray = run / "probes"                                # a folder someone put there: no marker
    stray.mkdir()
    (stray / "precious.txt").write_text("x")
    with pytest.raises(InterpAFError, match="no .interp_af.json marker"):
        owned.remove_owned(stray)
    assert owned.remove_owned(gap) == () and not gap.exists()
    kept = owned.remove_owned(run)                        # the unmarked folder survives, and so does run
    assert kept == (stray,) and tree(run) == [owned.MARKER, "probes", "probes/precious.txt"]
    os.remove(stray / "precious.txt")
    os.rmdir(stray)
    assert owned.remove_owned(run) == () and not run.exists()
    assert owned.remove_owned(tmp_path / "nowhere") == ()  # missing is fine


def test_remove_refuses_files_outside_owned_folders_and_links_are_not_followed(tmp_path):
    lone = tmp_path / "lone.txt"
    lone.write_text("x")
    with pytest.raises(InterpAFError, match="not inside a folder written by interp_af"):
        owned.remove_owned(lone)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "data.txt").write_text("keep me")
    d = owned.claim_dir(tmp_path / "out", what="run")
    (d / "link").symlink_to(victim, target_is_directory=True)
    assert owned.remove_owned(d) == () and not d.exists()
    assert (victim / "data.txt").read_text() == "keep me"
    with pytest.raises(InterpAFError, match="marker"):
        owned.remove_owned(owned.claim_dir(tmp_path / "o2", what="x") / owned.MARKER)


def test_replace_owned_swaps_only_what_the_toolkit_wrote(tmp_path):
    out = tmp_path / "out"
    new = owned.claim_dir(tmp_path / ".out.partial", what="organism build")
    (new / "model.safetensors").write_text("v1")
    owned.replace_owned(out, new)                          # nothing there yet
    assert (out / "model.safetensors").read_text() == "v1" and not new.exists() and owned.is_owned(out)
    new = owned.claim_dir(tmp_path / ".out.partial", what="organism build")
    (new / "model.safetensors").write_text("v2")
    owned.replace_owned(out, new)
    assert (out / "model.safetensors").read_text() == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]   # the parked old copy is gone

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("x")
    new = owned.claim_dir(tmp_path / "n2", what="x")
    with pytest.raises(InterpAFError, match="no .interp_af.json marker"):
        owned.replace_owned(foreign, new)
    mixed = owned.claim_dir(tmp_path / "mixed", what="x")
    (mixed / "ours.txt").write_text("x")
    os.mkdir(mixed / "theirs")                             # unmarked: in the way
    with pytest.raises(InterpAFError, match="in the way"):
        owned.replace_owned(mixed, new)
    assert (foreign / "mine.txt").exists() and (mixed / "ours.txt").exists() and new.exists()

    # files: replaced only inside an owned folder
    (new / "f.json").write_text("old")
    tmpf = new / ".f.json.new"
    tmpf.write_text("new")
    owned.replace_owned(new / "f.json", tmpf)
    assert (new / "f.json").read_text() == "new"
    outside = tmp_path / "user.json"
    outside.write_text("theirs")
    t2 = tmp_path / "t2"
    t2.write_text("ours")
    with pytest.raises(InterpAFError, match="not inside a folder written by interp_af"):
        owned.replace_owned(outside, t2)
    assert outside.read_text() == "theirs"


def test_ensure_dir_marks_only_what_it_creates(tmp_path):
    user = tmp_path / "results"
    user.mkdir()
    (user / "notes.txt").write_text("x")
    p = owned.ensure_dir(user / "a" / "b", what="gap")
    assert p.is_dir() and owned.is_owned(user / "a") and owned.is_owned(user / "a" / "b")
    assert not owned.is_owned(user)
    (tmp_path / "f").write_text("x")
    with pytest.raises(InterpAFError, match="is a file"):
        owned.ensure_dir(tmp_path / "f" / "sub", what="gap")


def test_a_foreign_marker_file_is_not_ownership(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / owned.MARKER).write_text('{"format": "something else"}')
    assert owned.owner(d) is None
    (d / owned.MARKER).write_text("not json")
    assert owned.owner(d) is None
    with pytest.raises(InterpAFError, match="not written by interp_af"):
        owned.remove_owned(d)


@pytest.mark.parametrize("bad", ["", "  ", "/somewhere/victim", "../victim", "..", ".", "a/b", "a\\b", "~x",
                                 "C:evil", " lead", "trail ", "tab\tname", None, 3])
def test_check_name_refuses_paths(bad):
    with pytest.raises(InterpAFError) as err:
        owned.check_name(bad)
    assert "\n" not in str(err.value) and "run name" in str(err.value)


@pytest.mark.parametrize("good", ["my-study", "organism_v2", "a.b", "study..2", "Ünïcode"])
def test_check_name_accepts_names(good):
    assert owned.check_name(good) == good
