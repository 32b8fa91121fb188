"""Resume, corruption and mismatch behaviour of the capture store (with a small contract-following handle).

An interrupted capture (an exception, or kill -9 of a subprocess) resumes and ends bit-identical to an
uninterrupted one; a corrupted or truncated file is named in a one-line error; a cache built for another model,
prompt set or config is refused; bad input leaves nothing on disk.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from interp_af.acts import capture, open_capture
from interp_af.errors import InterpAFError

from .fakes import HFHandle, random_prompts

ROOT = Path(__file__).resolve().parents[2]
KW = dict(sites=("resid_post", "resid_pre"), positions=("cue", "end_user", "decision-1..decision"),
          shard_rows=8, batch_size=3, metric=False, progress=False)


@pytest.fixture(scope="module")
def handle(tiny_models):
    return HFHandle(tiny_models["llama"])


@pytest.fixture(scope="module")
def prompts(handle):
    return random_prompts(29, len(handle.tokenizer))


@pytest.fixture(scope="module")
def reference(handle, prompts, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "cap"
    capture(handle, prompts, out, **KW)
    return out


# bookkeeping that legitimately differs between two runs: the lock, the ownership markers (they carry the time
# they were written) and the verification cache (it carries stat times)
BOOKKEEPING = (".lock", ".interp_af.json", ".verified.json")


def files_of(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*"))
            if p.is_file() and p.name not in BOOKKEEPING}


class Stop(Exception):
    pass


def stop_after(k: int):
    def cb(i: int) -> None:
        if i == k:
            raise Stop

    return cb


def test_reference_layout(reference, prompts, handle):
    cap = open_capture(reference)
    assert cap.n_rows == len(prompts) and cap.layers == (0, 1)
    assert cap.positions == ("cue", "end_user", "decision-1", "decision")
    a = cap.acts("resid_post", "decision")
    assert a.shape == (len(prompts), 2, handle.d_model)
    meta = cap.meta()
    assert list(meta["row"]) == list(range(len(prompts)))
    assert list(meta["query_id"]) == [p.query_id for p in prompts]
    # rows without a cue are NaN at the cue and flagged -1; every other row is finite
    no_cue = (meta["at.cue"] == -1).to_numpy().copy()
    assert no_cue.sum() == sum("cue" not in p.positions for p in prompts)
    cue = cap.acts("resid_pre", "cue")
    assert torch.isnan(cue[torch.as_tensor(no_cue)]).all() and torch.isfinite(cue[torch.as_tensor(~no_cue)]).all()
    assert not (reference / "shards").exists()
    assert cap.layer_index(1) == 1 and torch.isnan(cap.logit_diff()).all()  # metric off here
    with pytest.raises(InterpAFError, match="layer 5 was not captured"):
        cap.layer_index(5)
    with pytest.raises(InterpAFError, match="not captured.*positions: cue, end_user"):
        cap.acts("resid_post", "end_system")
    assert set(cap.cue_embeddings()) == {"free", "paid"}


def test_only_requested_positions_leave_the_pass(handle, prompts, tmp_path):
    handle.calls.clear()
    capture(handle, prompts[:7], tmp_path / "c", **{**KW, "sites": ("resid_post",)}, layers=[0])
    assert handle.calls and all(c["positions"].shape[1] == 4 for c in handle.calls)
    assert all(c["stop"] == 1 for c in handle.calls)  # no metric: stop after the last captured layer
    assert all(len(c["capture"]) == 1 for c in handle.calls)


def test_exception_then_resume_is_bit_identical(handle, prompts, reference, tmp_path):
    out = tmp_path / "cap"
    with pytest.raises(Stop):
        capture(handle, prompts, out, **KW, on_shard=stop_after(1))
    m = json.loads((out / "manifest.json").read_text())
    assert m["status"] == "writing" and sorted(m["shards"]) == ["0", "1"]
    with pytest.raises(InterpAFError, match="incomplete .2 of 4 shards"):
        open_capture(out)
    handle.calls.clear()
    capture(handle, prompts, out, **KW)
    assert sum(c["positions"].shape[0] for c in handle.calls) == len(prompts) - 16  # only the missing shards
    assert files_of(out) == files_of(reference)
    # a finished capture is returned as is
    handle.calls.clear()
    capture(handle, prompts, out, **KW)
    assert handle.calls == []


def test_kill_9_then_resume_is_bit_identical(tiny_models, handle, prompts, reference, tmp_path):
    out = tmp_path / "cap"
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        import torch
        torch.set_num_threads(1)
        from tests.acts.fakes import HFHandle, random_prompts
        from interp_af.acts import capture
        h = HFHandle({str(tiny_models["llama"])!r})
        kill = lambda k: os.kill(os.getpid(), signal.SIGKILL) if k == 2 else None
        capture(h, random_prompts(29, len(h.tokenizer)), {str(out)!r}, on_shard=kill, **{KW!r})
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert sorted(json.loads((out / "manifest.json").read_text())["shards"]) == ["0", "1", "2"]
    capture(handle, prompts, out, **KW)
    assert files_of(out) == files_of(reference)


def test_corrupted_shard_is_named_on_resume(handle, prompts, tmp_path):
    out = tmp_path / "cap"
    with pytest.raises(Stop):
        capture(handle, prompts, out, **KW, on_shard=stop_after(1))
    shard = out / "shards" / "shard-00001.safetensors"
    data = bytearray(shard.read_bytes())
    data[-5] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(InterpAFError, match=r"shard-00001\.safetensors is corrupted \(sha256") as err:
        capture(handle, prompts, out, **KW)
    assert "\n" not in str(err.value)
    shard.write_bytes(bytes(data[:100]))
    with pytest.raises(InterpAFError, match=r"shard-00001\.safetensors is truncated"):
        capture(handle, prompts, out, **KW)
    shard.unlink()  # as the message suggests: delete it and rerun -> only that shard is recomputed
    capture(handle, prompts, out, **KW)
    assert open_capture(out).n_rows == len(prompts)


def test_corrupted_array_is_named_on_open(reference, tmp_path):
    out = tmp_path / "cap"
    shutil.copytree(reference, out)
    f = out / "acts" / "resid_pre@decision.safetensors"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x01
    f.write_bytes(bytes(data))
    open_capture(out, verify=False)  # size unchanged: only the checksum can tell
    with pytest.raises(InterpAFError, match=r"resid_pre@decision\.safetensors is corrupted \(sha256 mismatch\)"):
        open_capture(out)
    f.write_bytes(bytes(data[:-4]))
    with pytest.raises(InterpAFError, match=r"resid_pre@decision\.safetensors is truncated"):
        open_capture(out, verify=False)
    (out / "meta.jsonl").write_text("")
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(InterpAFError, match="manifest.json is not valid JSON"):
        open_capture(out)


def test_mismatch_refused_and_overwrite(handle, prompts, reference, tmp_path, tiny_models):
    out = tmp_path / "cap"
    shutil.copytree(reference, out)
    before = files_of(out)
    with pytest.raises(InterpAFError, match="different prompt set .*--overwrite"):
        capture(handle, prompts[:-1], out, **KW)
    with pytest.raises(InterpAFError, match=r"different capture config \(layers differ\)"):
        capture(handle, prompts, out, **KW, layers=[1])
    with pytest.raises(InterpAFError, match=r"different capture config \(positions differ\)"):
        capture(handle, prompts, out, **{**KW, "positions": ("decision",)})
    other = HFHandle(tiny_models["llama"])
    with torch.no_grad():
        other.model.model.layers[0].mlp.down_proj.weight.mul_(1.01)
    with pytest.raises(InterpAFError, match=r"different model \(fingerprint differ\)"):
        capture(other, prompts, out, **KW)
    assert files_of(out) == before  # refusals touch nothing
    # the same weights at another path are the same model
    copy = tmp_path / "moved-model"
    shutil.copytree(tiny_models["llama"], copy)
    moved = HFHandle(copy)
    capture(moved, prompts, out, **KW)
    assert moved.calls == []
    cap = capture(other, prompts, out, **KW, overwrite=True)
    assert cap.model["fingerprint"] != json.loads(before["manifest.json"])["model"]["fingerprint"]
    assert not torch.equal(cap.acts("resid_post", "decision"), open_capture(reference).acts("resid_post", "decision"))


def test_bad_inputs_leave_nothing(handle, prompts, tmp_path):
    out = tmp_path / "new"
    cases = [
        (dict(sites=("resid_mid",)), "site.*resid_mid.*valid sites"),
        (dict(layers=[0, 7]), r"layer.*out of range.*0\.\.1"),
        (dict(positions=("decison",)), "decison.*defined by no prompt"),
        (dict(batch_size=0), "batch_size"),
        (dict(dtype="float8"), "storage dtype"),
    ]
    for kw, msg in cases:
        with pytest.raises(InterpAFError, match=msg):
            capture(handle, prompts, out, **{**KW, **kw})
    with pytest.raises(InterpAFError, match="no prompts"):
        capture(handle, [], out, **KW)
    assert not out.exists()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(InterpAFError, match="not empty and was not written by interp_af"):
        capture(handle, prompts, foreign, **KW)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    with pytest.raises(InterpAFError, match="does not exist"):
        open_capture(tmp_path / "nowhere")


def test_second_writer_is_refused(handle, prompts, tmp_path):
    out = tmp_path / "cap"
    out.mkdir()
    with open(out / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(InterpAFError, match="another capture is writing"):
            capture(handle, prompts, out, **KW)


def temp_files(d: Path) -> list[str]:
    from interp_af.atomic import is_temp_name

    return sorted(str(p.relative_to(d)) for p in d.rglob("*") if is_temp_name(p.name))


def test_kill_9_while_merging_an_array_leaves_no_orphan_after_resume(tiny_models, handle, prompts, reference, tmp_path):
    """kill -9 in the middle of writing ``acts/<key>.safetensors`` left ``.<key>.safetensors.tmp-PID`` in the
    finished capture; the resumed run clears it and ends byte-identical."""
    out = tmp_path / "cap"
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        import torch
        torch.set_num_threads(1)
        from tests.acts.fakes import HFHandle, random_prompts
        from interp_af.acts import capture, write
        real = write._stream_array
        def dying(out, manifest, key, chunk=8 << 20):
            it = real(out, manifest, key, chunk=64)
            yield next(it)
            if key == "resid_pre@end_user":
                os.kill(os.getpid(), signal.SIGKILL)   # mid-file: the temporary file is left behind
            yield from it
        write._stream_array = dying
        h = HFHandle({str(tiny_models["llama"])!r})
        capture(h, random_prompts(29, len(h.tokenizer)), {str(out)!r}, **{KW!r})
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    orphans = temp_files(out)
    assert len(orphans) == 1 and orphans[0].startswith("acts/.resid_pre@end_user.safetensors.tmp-"), orphans
    # and one more, of an older writer, beside the manifest (the pre-marker name pattern)
    (out / ".manifest.json.tmp-999999999").write_text("{half")
    handle.calls.clear()
    capture(handle, prompts, out, **KW)
    assert handle.calls == []                 # every shard was recorded: only the merge is redone
    assert temp_files(out) == []
    assert files_of(out) == files_of(reference)


def test_finished_capture_reopened_drops_orphans(handle, prompts, reference, tmp_path):
    out = tmp_path / "cap"
    shutil.copytree(reference, out)
    (out / "acts" / ".resid_post@cue.safetensors.tmp-999999999-abc123").write_bytes(b"half")
    capture(handle, prompts, out, **KW)       # a finished capture is returned as is, tidied
    assert temp_files(out) == [] and files_of(out) == files_of(reference)


def test_overwrite_keeps_foreign_files_and_allow_foreign(handle, prompts, reference, tmp_path):
    """A folder holding someone's files is refused; with allow_foreign the capture is written beside them, and
    neither --overwrite nor the end-of-capture clean-up deletes them."""
    out = tmp_path / "shared"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "acts_backup").mkdir()
    with pytest.raises(InterpAFError, match="not written by interp_af .2 entries: acts_backup, notes.txt"):
        capture(handle, prompts, out, **KW)
    assert sorted(p.name for p in out.iterdir()) == ["acts_backup", "notes.txt"]
    capture(handle, prompts, out, **KW, allow_foreign=True)
    capture(handle, prompts[:9], out, **KW, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine" and (out / "acts_backup").is_dir()
    assert open_capture(out).n_rows == 9


def test_legacy_capture_without_marker_is_adopted(handle, prompts, reference, tmp_path):
    from interp_af import owned

    out = tmp_path / "old"
    shutil.copytree(reference, out)
    for marker in out.rglob(owned.MARKER):
        marker.unlink()
    capture(handle, prompts, out, **KW)       # recognised by its manifest: resumed / returned as is
    assert owned.is_owned(out)
    cap = capture(handle, prompts[:5], out, **KW, overwrite=True)
    assert cap.n_rows == 5
