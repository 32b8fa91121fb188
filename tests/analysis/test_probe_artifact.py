"""Probe artifacts are verified on load (tensor sha256 + a checksum of the JSON), name a damaged file in one line,
and are never written over a file the toolkit did not write."""

from __future__ import annotations

import json

import pytest
import torch

from interp_af.analysis.probe_artifact import ProbeEntry, ProbeSet
from interp_af.errors import InterpAFError

MODEL = {"name": "m", "adapter": "", "d_model": 8, "fingerprint": "f" * 64}


def probe_set() -> ProbeSet:
    g = torch.Generator().manual_seed(0)
    entries = tuple(ProbeEntry(layer=L, site="resid_post", position="decision", label="arm", kind="diffmean",
                               metrics={"auroc": 0.9}) for L in (0, 1))
    return ProbeSet(torch.randn(2, 8, generator=g), torch.randn(2, generator=g), entries, MODEL, {"capture": "x"})


def one_line(err, *needles):
    msg = str(err.value)
    assert "\n" not in msg, msg
    for n in needles:
        assert n in msg, msg


def test_round_trip_records_and_checks_checksums(tmp_path):
    js = probe_set().save(tmp_path / "p")
    doc = json.loads(js.read_text())
    assert len(doc["tensors_sha256"]) == 64 and len(doc["checksum"]) == 64
    back = ProbeSet.load(js)
    assert torch.equal(back.directions, probe_set().directions) and torch.equal(back.biases, probe_set().biases)
    assert [(e.layer, e.kind, dict(e.metrics)) for e in back.entries] == [(0, "diffmean", {"auroc": 0.9}),
                                                                          (1, "diffmean", {"auroc": 0.9})]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json", "p.safetensors"]


def test_flipped_tensor_byte_is_named(tmp_path):
    probe_set().save(tmp_path / "p")
    st = tmp_path / "p.safetensors"
    data = bytearray(st.read_bytes())
    data[-3] ^= 0x10
    st.write_bytes(bytes(data))
    with pytest.raises(InterpAFError) as err:
        ProbeSet.load(tmp_path / "p")
    one_line(err, str(st), "corrupted (sha256 mismatch)")


def test_flipped_header_byte_is_one_line_not_a_traceback(tmp_path):
    probe_set().save(tmp_path / "p")
    st = tmp_path / "p.safetensors"
    data = bytearray(st.read_bytes())
    data[10] ^= 0xFF
    st.write_bytes(bytes(data))
    with pytest.raises(InterpAFError) as err:
        ProbeSet.load(tmp_path / "p")
    one_line(err, str(st))
    # a file from before checksums were recorded: the unreadable header is still one line
    js = tmp_path / "p.json"
    doc = json.loads(js.read_text())
    for k in ("tensors_sha256", "tensors_bytes", "checksum"):
        doc.pop(k)
    js.write_text(json.dumps(doc))
    with pytest.raises(InterpAFError) as err:
        ProbeSet.load(js)
    one_line(err, str(st), "unreadable")


def test_edited_json_is_refused(tmp_path):
    js = probe_set().save(tmp_path / "p")
    doc = json.loads(js.read_text())
    doc["probes"][0]["layer"] = 5            # a silent edit would score the wrong layer
    js.write_text(json.dumps(doc, indent=1))
    with pytest.raises(InterpAFError) as err:
        ProbeSet.load(js)
    one_line(err, str(js), "checksum mismatch")
    js.write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(InterpAFError, match="not valid JSON"):
        ProbeSet.load(js)


def test_truncated_tensors_and_mismatched_pair(tmp_path):
    probe_set().save(tmp_path / "p")
    st = tmp_path / "p.safetensors"
    st.write_bytes(st.read_bytes()[:-4])
    with pytest.raises(InterpAFError, match="truncated or corrupted"):
        ProbeSet.load(tmp_path / "p")


def test_legacy_file_without_checksums_still_loads(tmp_path):
    js = probe_set().save(tmp_path / "p")
    doc = json.loads(js.read_text())
    for k in ("tensors_sha256", "tensors_bytes", "checksum"):
        doc.pop(k)
    js.write_text(json.dumps(doc))
    assert len(ProbeSet.load(js)) == 2


def test_never_overwrites_a_file_it_did_not_write(tmp_path):
    (tmp_path / "p.json").write_text('{"my": "notes"}')
    with pytest.raises(InterpAFError) as err:
        probe_set().save(tmp_path / "p")
    one_line(err, "p.json", "not an interp_af probe file")
    assert (tmp_path / "p.json").read_text() == '{"my": "notes"}'
    (tmp_path / "q.safetensors").write_bytes(b"someone's tensors")
    with pytest.raises(InterpAFError, match="q.safetensors exists and is not an interp_af probe file"):
        probe_set().save(tmp_path / "q")
    assert (tmp_path / "q.safetensors").read_bytes() == b"someone's tensors"
    probe_set().save(tmp_path / "r")
    probe_set().save(tmp_path / "r")         # its own pair: replaced
    (tmp_path / "r.json").unlink()            # a crash between the two writes: the tensors carry the format
    probe_set().save(tmp_path / "r")
    assert len(ProbeSet.load(tmp_path / "r")) == 2
