"""The on-disk format: our byte-level safetensors writer is read by the reference library, memory maps give the
same values, and position specs expand and resolve as documented."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open

from interp_af.acts import sfio
from interp_af.acts.positions import check_known, expand, resolve
from interp_af.errors import InterpAFError


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_written_files_read_by_safetensors_and_memmap(tmp_path, dtype):
    g = torch.Generator().manual_seed(0)
    tensors = {"b": torch.randn(5, 3, 7, generator=g).to(dtype), "a": torch.arange(4, dtype=torch.int64),
               "c": torch.randn(2, generator=g).to(dtype)}
    f = tmp_path / "x.safetensors"
    sha = sfio.save(f, tensors, {"k": "v", "z": "1"})
    assert sha == sfio.sha256_file(f)
    with safe_open(str(f), framework="pt") as fh:
        assert fh.metadata() == {"k": "v", "z": "1"}
        for k, v in tensors.items():
            assert torch.equal(fh.get_tensor(k), v)
    for k, v in tensors.items():
        m = sfio.memmap(f, k)
        assert m.dtype == v.dtype and torch.equal(m, v)
    # deterministic bytes: a second write of the same content is identical
    assert sfio.save(tmp_path / "y.safetensors", tensors, {"z": "1", "k": "v"}) == sha
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind


def test_streamed_header_matches_content(tmp_path):
    t = torch.randn(6, 2, 3)
    spec = sfio.Spec("F32", tuple(t.shape))
    f = tmp_path / "s.safetensors"
    sfio.write_atomic(f, [sfio.header_bytes({"acts": spec}), sfio.tensor_bytes(t[:4]), sfio.tensor_bytes(t[4:])])
    with safe_open(str(f), framework="pt") as fh:
        assert torch.equal(fh.get_tensor("acts"), t)


def test_memmap_detects_truncation(tmp_path):
    f = tmp_path / "t.safetensors"
    sfio.save(f, {"acts": torch.randn(10, 4)})
    data = f.read_bytes()
    f.write_bytes(data[:-8])
    with pytest.raises(ValueError, match="truncated"):
        sfio.memmap(f, "acts")


def test_failed_atomic_write_leaves_nothing(tmp_path):
    def boom():
        yield b"partial"
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        sfio.write_atomic(tmp_path / "z.bin", boom())
    assert list(tmp_path.iterdir()) == []


def test_position_specs():
    assert expand(["decision", "cue+0", "end_user-2"]) == ("decision", "cue", "end_user-2")
    assert expand(["decision-2..decision", "decision"]) == ("decision-2", "decision-1", "decision")
    assert expand("cue,decision") == ("cue", "decision")
    named = {"cue": 3, "decision": 9}
    assert resolve("decision-2", named, 10) == 7
    assert resolve("decision+1", named, 10) == -1  # past the prompt
    assert resolve("cue", {"decision": 9}, 10) == -1  # this arm has no cue
    for bad in ("dec ision", "decision-1..cue", "decision..decision-3", "3"):
        with pytest.raises(InterpAFError, match="position|window"):
            expand([bad])
    with pytest.raises(InterpAFError, match="no positions"):
        expand([])
    with pytest.raises(InterpAFError, match="desicion"):
        check_known(["desicion"], {"cue", "decision"})
