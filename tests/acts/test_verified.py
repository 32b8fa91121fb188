"""Verified reads: every reader of a capture checks the checksums it has (cached by stat), and names a corrupted
file in one line: a flipped data byte in an ``acts/`` file, an edited ``meta.jsonl``, a flipped cue-embedding byte
and a flipped safetensors header byte. Before, the probe path opened captures with ``verify=False`` and used all
of these silently (exit 0, different scores), and the header flip was a traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from interp_af import checksums
from interp_af.acts import capture, open_capture
from interp_af.acts.store import RECORD
from interp_af.errors import InterpAFError

from .fakes import HFHandle, random_prompts

ROOT = Path(__file__).resolve().parents[2]
KW = dict(sites=("resid_post",), positions=("cue", "decision"), shard_rows=16, batch_size=4, metric=True,
          progress=False)


@pytest.fixture(scope="module")
def reference(tiny_models, tmp_path_factory):
    h = HFHandle(tiny_models["llama"])
    out = tmp_path_factory.mktemp("ver") / "cap"
    capture(h, random_prompts(24, len(h.tokenizer)), out, **KW)
    return out


@pytest.fixture
def cap_dir(reference, tmp_path):
    out = tmp_path / "cap"
    shutil.copytree(reference, out)
    return out


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def header_len(path: Path) -> int:
    return 8 + int.from_bytes(path.read_bytes()[:8], "little")


def one_line(err: pytest.ExceptionInfo, *needles: str) -> str:
    msg = str(err.value)
    assert "\n" not in msg, msg
    for n in needles:
        assert n in msg, msg
    return msg


def corrupt(kind: str, d: Path) -> Path:
    """Apply one kind of corruption (size unchanged, so only a checksum can tell); return the damaged file."""
    if kind == "acts data byte":
        f = d / "acts" / "resid_post@decision.safetensors"
        flip(f, header_len(f) + 17)
    elif kind == "acts header byte":
        f = d / "acts" / "resid_post@decision.safetensors"
        data = bytearray(f.read_bytes())
        i = data.index(b'"shape":[') + 9
        data[i] = ord("9") if data[i] != ord("9") else ord("8")   # still valid JSON, wrong shape
        f.write_bytes(bytes(data))
    elif kind == "acts header garbage":
        f = d / "acts" / "resid_post@decision.safetensors"
        flip(f, 12)                                              # inside the JSON header: no longer parses
    elif kind == "meta.jsonl edited":
        f = d / "meta.jsonl"
        text = f.read_text()
        assert '"query_id":"q000"' in text
        f.write_text(text.replace('"query_id":"q000"', '"query_id":"q999"', 1))  # same length: sizes agree
    elif kind == "cue embedding byte":
        f = d / "cue_embeddings.safetensors"
        flip(f, header_len(f) + 3)
    else:
        raise AssertionError(kind)
    return f


KINDS = ("acts data byte", "acts header byte", "acts header garbage", "meta.jsonl edited", "cue embedding byte")


def read_all(cap) -> None:
    cap.acts("resid_post", "decision")
    cap.meta()
    cap.cue_embeddings()


@pytest.mark.parametrize("kind", KINDS)
def test_each_corruption_is_one_line_at_open(cap_dir, kind):
    before = (cap_dir / "meta.jsonl").stat().st_size
    f = corrupt(kind, cap_dir)
    assert (cap_dir / "meta.jsonl").stat().st_size == before or kind == "meta.jsonl edited"
    with pytest.raises(InterpAFError) as err:
        open_capture(cap_dir)
    one_line(err, str(f), "corrupted (sha256 mismatch)", "--overwrite")


@pytest.mark.parametrize("kind", KINDS)
def test_each_corruption_is_caught_at_first_read_without_eager_verify(cap_dir, kind):
    """``verify=False`` only defers the check (the probe commands used it and read corrupted data silently)."""
    f = corrupt(kind, cap_dir)
    cap = open_capture(cap_dir, verify=False)
    with pytest.raises(InterpAFError) as err:
        read_all(cap)
    one_line(err, str(f), "corrupted")


@pytest.mark.parametrize("kind", ["acts data byte", "meta.jsonl edited", "cue embedding byte"])
def test_probe_path_refuses_corrupted_capture(cap_dir, kind):
    from interp_af.analysis.probe_transfer import Condition, transfer_capture
    from interp_af.analysis.probes import ProbeConfig, probe_capture

    cfg = ProbeConfig(n_boot=0, controls=(), kinds=("diffmean",), n_folds=2)
    probe_capture(cap_dir, "arm", site="resid_post", config=cfg)   # clean: fine
    f = corrupt(kind, cap_dir)
    with pytest.raises(InterpAFError) as err:
        probe_capture(cap_dir, "arm", site="resid_post", config=cfg)
    one_line(err, str(f))
    with pytest.raises(InterpAFError):
        transfer_capture(cap_dir, [Condition("a", "arm"), Condition("b", "arm")], site="resid_post",
                         position="decision", config=cfg)


def test_probe_cli_exits_2_on_corrupted_capture(cap_dir, tmp_path):
    """The command line (which still opens with verify=False) gets the one-line error and exit status 2."""
    f = corrupt("acts data byte", cap_dir)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", "from interp_af.cli import app; app()", "probe", str(cap_dir),
                           "--label", "arm", "--n-boot", "0", "--no-controls", "--folds", "2", "--kinds", "diffmean",
                           "--out", str(tmp_path / "probes")], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines == [lines[-1]] and str(f) in lines[-1] and "Traceback" not in proc.stderr


def test_verification_is_cached_by_stat(cap_dir, monkeypatch):
    calls: list[str] = []
    real = checksums.sha256_file
    monkeypatch.setattr(checksums, "sha256_file", lambda p: calls.append(Path(p).name) or real(p))
    checksums.forget_all()
    monkeypatch.setattr(checksums, "RACY_NS", -10**18)  # treat the just-copied files as settled
    open_capture(cap_dir)
    n_files = len(calls)
    assert n_files == 4  # two arrays (cue, decision), meta.jsonl, cue embeddings
    open_capture(cap_dir).acts("resid_post", "decision")
    assert len(calls) == n_files                          # in-process cache: no second hash
    checksums.forget_all()                                # a new process: the on-disk record answers
    rec = json.loads((cap_dir / RECORD).read_text())
    assert set(rec["files"]) == {"acts/resid_post@cue.safetensors", "acts/resid_post@decision.safetensors",
                                 "meta.jsonl", "cue_embeddings.safetensors"}
    open_capture(cap_dir)
    assert len(calls) == n_files
    f = corrupt("acts data byte", cap_dir)                # an edit changes the stat: hashed again, and caught
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(InterpAFError, match="corrupted"):
        open_capture(cap_dir)
    assert len(calls) == n_files + 1


def test_racy_files_are_hashed_again(cap_dir, monkeypatch):
    """A file checked in the same clock tick as its last change is not trusted later (a same-tick edit would leave
    the stat unchanged), so freshly written files are re-hashed rather than cached."""
    calls: list[str] = []
    real = checksums.sha256_file
    monkeypatch.setattr(checksums, "sha256_file", lambda p: calls.append(Path(p).name) or real(p))
    monkeypatch.setattr(checksums, "RACY_NS", 10**18)
    checksums.forget_all()
    open_capture(cap_dir)
    open_capture(cap_dir)
    assert len(calls) == 8  # 4 files, hashed at each open


def test_read_only_capture_is_verified_without_a_record(cap_dir, monkeypatch):
    from interp_af import atomic

    def refuse(*a, **k):
        raise InterpAFError("read-only")

    monkeypatch.setattr(atomic, "write_json", refuse)
    (cap_dir / RECORD).unlink(missing_ok=True)
    checksums.forget_all()
    open_capture(cap_dir)                                  # the cache write fails silently; the read does not
    assert not (cap_dir / RECORD).exists()
    corrupt("cue embedding byte", cap_dir)
    with pytest.raises(InterpAFError, match="cue-embedding file .* is corrupted"):
        open_capture(cap_dir)


def test_damaged_manifest_and_meta_are_one_line(cap_dir):
    m = json.loads((cap_dir / "manifest.json").read_text())
    del m["arrays"]
    (cap_dir / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(InterpAFError, match="lacks its 'arrays' section"):
        open_capture(cap_dir)
    (cap_dir / "manifest.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InterpAFError, match="not valid JSON"):
        open_capture(cap_dir)
    (cap_dir / "manifest.json").write_text("[1, 2]")
    with pytest.raises(InterpAFError, match="not an interp_af capture manifest"):
        open_capture(cap_dir)
