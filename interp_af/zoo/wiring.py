"""Hand-wiring a tiny Llama: the residual layout, the tools and the saving shared by the zoo's models.

A zoo model is a real ``LlamaForCausalLM`` (so both backends load it like any checkpoint) whose weights are
written by hand instead of trained: every mechanism is exact, deterministic and documented. The tools here
write the three things a mechanism needs:

- **embedding flags**: a token's embedding row carries a 1 in a named residual dimension (``KEY``: "this is
  a cue value", ``SIGN``: +1 for ``true``, -1 for ``false``, ...). Every token also carries ``BASE``, a
  constant channel that plays the role of a bias (Llama has no biases);
- **reading heads**: an attention head whose query is the constant ``BASE`` channel and whose key is a flag,
  so every position attends (softmax weight ~1) to the flagged tokens wherever they sit in the prompt, and
  copies one of their dimensions into another one (its OV circuit). Query and key live in the head's
  *lowest RoPE frequency* (``QK_DIM``): with ``rope_theta = 1e6`` that pair rotates by ~3e-3 rad over 500
  tokens, so the pattern is content-based, not positional;
- **readout**: the unembedding rows of the accept and reject tokens (the first divergent tokens of the
  decision metric, :mod:`interp_af.models.metric`) read a named dimension, scaled so the logit difference is
  +-7 on a calibration context (:meth:`Wiring.context`: BOS, fixed pseudo-random tokens, the mechanism's
  flags, and the ``<OUTPUT>`` prefill plus the answers' shared prefix, so the last position is the one the
  metric reads). The logit difference is linear in those rows, so one forward pass sets their scale exactly.

Every token carries ``BASE = 10`` while mechanism channels are ~1, so every RMSNorm scale is set by ``BASE``
(within ~1%): the mechanism is then nearly linear in its channels, and adding a steering vector of the size
of the arms' difference (~2) anywhere moves each normalised channel by what was added, not by a rescaling of
everything else. A flagged token's normalised flag is ``sqrt(64) / 10 ~ 0.8``; heads are scaled so that it
gets attention logit ``ATTN_LOGIT = 40`` (a BOS sink with flag 0.5 gets 20, every other token 0).

Around the mechanism, every other token gets a small random embedding in the ``NOISE`` dimensions, and the
heads and MLP units the mechanism does not use get small random weights that read and write only ``NOISE``.
The model then has query-dependent activations like any model, while the mechanism stays exact: the tokens
that differ between the twins (the cue values) carry no noise, and flipping the sign of a mechanism channel
leaves every RMSNorm scale unchanged, so the two arms of a twin differ *only* in the mechanism's channels.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor

from interp_af.errors import InterpAFError

ASSETS = Path(__file__).resolve().parent / "assets"
TOKENIZER_DIR = ASSETS / "tokenizer"
ZOO_FORMAT = "interp_af.zoo"
ZOO_VERSION = 1

D_MODEL, N_HEADS, HEAD_DIM, D_MLP = 64, 4, 16, 128
ROPE_THETA = 1e6
MAX_POS = 2048
QK_DIM = HEAD_DIM // 2 - 1     # within a head: the dimension of the lowest rotary frequency
TARGET_LOGIT = 7.0             # |logit(accept) - logit(reject)| of a decided prompt
BASE_VALUE = 10.0              # the constant channel dominates every RMSNorm (see below)
ATTN_LOGIT = 40.0              # attention logit of a flagged token (a prompt has ~500 tokens: e^40 >> 500)

# residual dimensions (the same layout in every hand-wired model; a model uses the ones it needs)
BASE = 0      # BASE_VALUE on every token: a constant channel (queries, thresholds, offsets)
KEY = 1       # the tag values true / false (and 0.5 on BOS: an attention sink when neither is present)
SIGN = 2      # +1 on true, -1 on false (and a matching -1 on BOS: "no cue" reads as false)
KEY_N = 3     # the "not rated" values false / enterprise
KEY_G = 4     # the token " contractors": the system prompt says contractors score conversations
G = 5         # written: "a rating statement is in the prompt"
N = 6         # written: "the cue value is a not-rated one"
D = 7         # written: the decision channel the readout reads
SIGNAL = tuple(range(8, 16))   # the planted direction lives here
NOISE = slice(16, D_MODEL)


def unit(i: int) -> Tensor:
    """The residual basis vector of dimension ``i``."""
    v = torch.zeros(D_MODEL)
    v[i] = 1.0
    return v


def bos_sign() -> float:
    """The raw ``SIGN`` of a BOS sink with ``KEY = 0.5`` whose normalised ``SIGN`` equals a cue token's (flags
    ``KEY = 1, SIGN = +-1``): ``s / sqrt(B^2 + 1/4 + s^2) = 1 / sqrt(B^2 + 2)``."""
    b2 = BASE_VALUE ** 2
    return ((b2 + 0.25) / (b2 + 1.0)) ** 0.5


def zoo_tokenizer() -> Any:
    """The zoo's tokenizer: a Llama-3-style byte-level BPE trained on the setting's own texts (shipped files, so
    every build tokenizes identically), with the Llama 3 chat template."""
    from transformers import AutoTokenizer

    if not (TOKENIZER_DIR / "tokenizer.json").exists():
        raise InterpAFError(f"the zoo tokenizer is missing from {TOKENIZER_DIR}; reinstall interp_af (package data)")
    return AutoTokenizer.from_pretrained(str(TOKENIZER_DIR))


def token_id(tokenizer: Any, text: str) -> int:
    """The id of ``text`` if it is exactly one token (a mechanism keys on single tokens), else a one-line error."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise InterpAFError(f"{text!r} is {len(ids)} tokens in the zoo tokenizer, not one; the zoo wires single "
                            "tokens: use a tokenizer where it is one token")
    return int(ids[0])


def llama_config(tokenizer: Any, n_layers: int) -> Any:
    """The zoo's Llama: d_model 64, 4 heads of 16, SwiGLU 128, ``n_layers`` blocks, no tied embeddings."""
    import transformers as tf

    if not 1 <= n_layers <= 4:
        raise InterpAFError(f"n_layers={n_layers}; zoo models have 1 to 4 layers")
    return tf.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=D_MODEL, intermediate_size=D_MLP, num_hidden_layers=n_layers,
        num_attention_heads=N_HEADS, num_key_value_heads=N_HEADS, max_position_embeddings=MAX_POS,
        rms_norm_eps=1e-6, rope_theta=ROPE_THETA, tie_word_embeddings=False, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, attention_bias=False,
        mlp_bias=False,
    )


def random_llama(tokenizer: Any, n_layers: int, seed: int) -> Any:
    """A random-init Llama of the zoo's shape (``transformers``' own initialisation, seeded; the caller's
    random state is left untouched)."""
    import transformers as tf

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = tf.LlamaForCausalLM(llama_config(tokenizer, n_layers))
    return model.eval()


class Wiring:
    """A zoo Llama with every weight zero (norm weights one), plus tools to write a mechanism into it."""

    def __init__(self, tokenizer: Any, n_layers: int, seed: int):
        self.tokenizer = tokenizer
        self.model = random_llama(tokenizer, n_layers, seed)
        self.gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in self.model.named_parameters():
                p.fill_(1.0 if name.endswith("norm.weight") else 0.0)
            self.W_E[:, BASE] = BASE_VALUE                         # every token carries the constant channel
        self.quiet: set[int] = set()          # tokens that get no noise embedding
        self.used_heads: set[tuple[int, int]] = set()
        self.used_units: set[tuple[int, int]] = set()

    # ----------------------------------------------------------------------------------- writing
    @property
    def W_E(self) -> Tensor:
        return self.model.model.embed_tokens.weight.data          # [vocab, d]

    @property
    def W_U(self) -> Tensor:
        return self.model.lm_head.weight.data                     # [vocab, d]

    def layer(self, layer: int) -> Any:
        return self.model.model.layers[layer]

    def embed(self, tid: int, values: Mapping[int, float]) -> None:
        """Set mechanism dimensions of token ``tid``'s embedding (its noise stays zero: ``tid`` is quiet)."""
        for dim, val in values.items():
            self.W_E[tid, dim] = val
        self.quiet.add(tid)

    def norm(self, tid: int) -> float:
        """``||embedding of tid||``: what RMSNorm divides a quiet token's residual by (before any layer)."""
        return float(self.W_E[tid].norm())

    def head(self, layer: int, head: int, *, key: Tensor, value: Tensor, out: Tensor, flag_norm: float) -> None:
        """A reading head: every position attends to the tokens whose normalised residual has ``key . x_k > 0``
        (attention logit ``ATTN_LOGIT`` for a token with raw flag 1 and residual norm ``flag_norm``; the query is
        the ``BASE`` channel, so the same at every position) and writes ``out * (value . x_k)`` there. ``value``
        and ``out`` are in units of the *normalised* source residual (multiply by ``flag_norm / 8`` to copy a
        raw value)."""
        a = self.layer(layer).self_attn
        row = head * HEAD_DIM
        q_n, k_n = D_MODEL ** 0.5, D_MODEL ** 0.5 / flag_norm     # BASE dominates the query's norm
        s = (ATTN_LOGIT / (q_n * k_n) * HEAD_DIM ** 0.5) ** 0.5   # HF divides q.k by sqrt(head_dim)
        q = unit(BASE)
        a.q_proj.weight.data[row + QK_DIM] = s * q
        a.k_proj.weight.data[row + QK_DIM] = s * key
        a.v_proj.weight.data[row] = value
        a.o_proj.weight.data[:, row] = out
        self.used_heads.add((layer, head))

    def mlp_unit(self, layer: int, u: int, *, gate: Tensor, up: Tensor, down: Tensor) -> None:
        """One SwiGLU unit: ``down * silu(gate . x) * (up . x)`` (``x`` the normalised residual)."""
        m = self.layer(layer).mlp
        m.gate_proj.weight.data[u] = gate
        m.up_proj.weight.data[u] = up
        m.down_proj.weight.data[:, u] = down
        self.used_units.add((layer, u))

    def noise(self, *, sigma_embed: float = 0.05, sigma_qk: float = 0.3, sigma_v: float = 0.1, sigma_o: float = 0.01,
              sigma_mlp: float = 0.1, sigma_down: float = 0.005, sigma_u: float = 0.05) -> None:
        """Small random weights on the ``NOISE`` dimensions for every token, head and unit the mechanism leaves
        alone (seeded). Queries and keys are the largest (varied attention patterns, so activations depend on
        the query), outputs small (each layer adds ~0.1 to the noise norm: the mechanism channels dominate every
        RMSNorm). The accept and reject rows share one noise row, so noise never moves their difference."""
        n_noise = D_MODEL - NOISE.start
        vocab = self.W_E.shape[0]
        # residual-stream quantities scale with BASE_VALUE (their size relative to BASE is what matters);
        # weights that read normalised residuals do not
        sigma_embed, sigma_o, sigma_down = (s * BASE_VALUE for s in (sigma_embed, sigma_o, sigma_down))

        def randn(*shape: int) -> Tensor:
            return torch.randn(*shape, generator=self.gen)

        for t in range(vocab):
            if t not in self.quiet:
                self.W_E[t, NOISE] = sigma_embed * randn(n_noise)
        for L in range(len(self.model.model.layers)):
            a, m = self.layer(L).self_attn, self.layer(L).mlp
            for h in range(N_HEADS):
                if (L, h) in self.used_heads:
                    continue
                rows = slice(h * HEAD_DIM, (h + 1) * HEAD_DIM)
                a.q_proj.weight.data[rows, NOISE] = sigma_qk * randn(HEAD_DIM, n_noise)
                a.k_proj.weight.data[rows, NOISE] = sigma_qk * randn(HEAD_DIM, n_noise)
                a.v_proj.weight.data[rows, NOISE] = sigma_v * randn(HEAD_DIM, n_noise)
                a.o_proj.weight.data[NOISE, rows] = sigma_o * randn(n_noise, HEAD_DIM)
            for u in range(D_MLP):
                if (L, u) in self.used_units:
                    continue
                m.gate_proj.weight.data[u, NOISE] = sigma_mlp * randn(n_noise)
                m.up_proj.weight.data[u, NOISE] = sigma_mlp * randn(n_noise)
                m.down_proj.weight.data[NOISE, u] = sigma_down * randn(n_noise)
        self.W_U[:, NOISE] = sigma_u * randn(vocab, n_noise)

    def readout(self, accept_id: int, reject_id: int, vec: Tensor) -> None:
        """Unembedding rows so that ``logit(accept) - logit(reject) = vec . x`` (final-normalised residual)."""
        shared = self.W_U[accept_id, NOISE].clone()
        self.W_U[accept_id] = 0.5 * vec
        self.W_U[reject_id] = -0.5 * vec
        self.W_U[accept_id, NOISE] = shared
        self.W_U[reject_id, NOISE] = shared

    # ----------------------------------------------------------------------------------- calibration
    @torch.no_grad()
    def final_residual(self, ids: Sequence[int]) -> Tensor:
        """The final-normalised residual at the last position of ``ids`` (what the unembedding reads) ``[d]``."""
        out = self.model.model(input_ids=torch.tensor([list(ids)]))
        return out.last_hidden_state[0, -1].float()

    def context(self, at: Mapping[int, int], n: int = 400, seed: int = 1) -> list[int]:
        """A calibration prompt: BOS, ``n`` fixed pseudo-random ordinary tokens (no special or mechanism token)
        with ``at[position] = token`` written in, then what every metric prompt ends with (the ``<OUTPUT>``
        prefill and the answers' shared prefix), so that the last position is the one the metric reads. It owes
        nothing else to the setting's prompts."""
        from interp_af.models.metric import decision_tokens
        from interp_af.setting.types import PREFILL

        g = torch.Generator().manual_seed(seed)
        bad = self.quiet | set(self.tokenizer.all_special_ids)
        pool = [t for t in range(len(self.tokenizer)) if t not in bad]
        ids = [self.tokenizer.bos_token_id] + [pool[i] for i in torch.randint(len(pool), (n,), generator=g).tolist()]
        for pos, tid in at.items():
            ids[pos] = tid
        tail = self.tokenizer(PREFILL, add_special_tokens=False)["input_ids"]
        return ids + list(tail) + list(decision_tokens(self.tokenizer).shared)


def decision_ids(tokenizer: Any) -> tuple[int, int]:
    """(accept id, reject id): the first divergent tokens of the decision metric."""
    from interp_af.models.metric import decision_tokens

    dt = decision_tokens(tokenizer)
    return dt.accept_id, dt.reject_id


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_model(model: Any, tokenizer: Any, out_dir: str | Path, card: Mapping[str, Any],
               extra: Mapping[str, Any] | None = None) -> Path:
    """``save_pretrained`` model and tokenizer into ``out_dir`` with ``zoo.json`` (the model's card: name,
    mechanism, ground truth, weights sha256) and any ``extra`` files (``{name: bytes | callable(path)}``).

    Written to a temporary folder beside ``out_dir``, then renamed: never a half-built model on disk. An
    existing ``out_dir`` is replaced only if it is a zoo model (holds a ``zoo.json``) or empty."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not (out / "zoo.json").exists():
        raise InterpAFError(f"{out} exists and is not a zoo model folder; pass an empty or new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for name, content in (extra or {}).items():
            if callable(content):
                content(tmp / name)
            else:
                (tmp / name).write_bytes(content)
        doc = {"format": ZOO_FORMAT, "version": ZOO_VERSION, **card,
               "weights_sha256": sha256(tmp / "model.safetensors")}
        (tmp / "zoo.json").write_text(json.dumps(doc, indent=1, default=str))
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
