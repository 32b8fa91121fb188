"""Which tokenizer renders the prompts when the user names no model.

Rendering needs only a tokenizer, never weights. Order of preference:

1. ``--model PATH``: that model's own tokenizer (a local directory; a Hub name works only if it is already
   in the local Hugging Face cache, since these machines are offline);
2. a small Llama-3-style BPE tokenizer trained on the setting's own texts (a second or two), cached under
   ``$INTERP_AF_CACHE`` (default ``~/.cache/interp_af``) so later runs load it instantly.

The command line never gets here without a model: it renders through a target's tokenizer
(:mod:`interp_af.targets`), the default target's when no ``--model`` is given.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from interp_af.errors import InterpAFError

__all__ = ["load_tokenizer", "default_tokenizer", "cache_dir"]

_FALLBACK_VERSION = "1"


def cache_dir() -> Path:
    env = os.environ.get("INTERP_AF_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "interp_af"


def load_tokenizer(model: str | Path) -> Any:
    """The tokenizer of a local model directory (or of a Hub name already in the local cache)."""
    from transformers import AutoTokenizer

    p = Path(model)
    if p.exists():
        if p.is_dir() and not any((p / f).exists() for f in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")):
            raise InterpAFError(f"model directory {p} has no tokenizer files (tokenizer.json / tokenizer_config.json); "
                                f"save the tokenizer there with tokenizer.save_pretrained({str(p)!r})")
        try:
            return AutoTokenizer.from_pretrained(str(p))
        except Exception as err:  # noqa: BLE001 - any loader failure becomes one line
            raise InterpAFError(f"could not load a tokenizer from {p} ({type(err).__name__}); point --model at a "
                                f"directory written by save_pretrained") from None
    try:
        return AutoTokenizer.from_pretrained(str(model), local_files_only=True)
    except Exception:  # noqa: BLE001
        raise InterpAFError(f"model {str(model)!r} is not a local directory and not in the Hugging Face cache; "
                            f"download it where there is network (hf download {model}) and pass its local path") from None


def _fallback_corpus() -> list[str]:
    """The setting's own texts: every built-in variant's system prompt and user turns on a few queries."""
    from interp_af.setting.prompts import list_variants
    from interp_af.setting.queries import benign_queries, load_queries

    qs = load_queries(limit=100) + benign_queries()
    texts = []
    for v in list_variants():
        if not hasattr(v, "system"):
            continue
        texts.append(v.system())  # type: ignore[attr-defined]
        texts += [v.conversation(q, arm).user for q in qs[:10] for arm in v.arms]
    return texts + [q.text for q in qs]


def default_tokenizer() -> tuple[Any, str]:
    """``(tokenizer, one-line note on where it came from)`` when no model is named."""
    from transformers import AutoTokenizer

    corpus = _fallback_corpus()
    key = hashlib.sha256(("\n".join(corpus) + _FALLBACK_VERSION).encode()).hexdigest()[:12]
    target = cache_dir() / f"tokenizer-llama3-{key}"
    if not (target / "tokenizer_config.json").exists():
        from interp_af.testing.tiny import train_tokenizer

        tok = train_tokenizer("llama3", corpus, vocab_size=4000)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
        try:  # write to a temp dir, then rename: a crash never leaves a half-written cache entry
            tok.save_pretrained(tmp)
            tmp.rename(target)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not (target / "tokenizer_config.json").exists():
                raise
        note = f"tokenizer: no model given; trained a Llama-3-style BPE on the setting's texts ({target})"
    else:
        note = f"tokenizer: no model given; using the cached Llama-3-style BPE ({target})"
    return AutoTokenizer.from_pretrained(str(target)), note
