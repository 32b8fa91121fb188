"""A minimal handle that follows the ModelHandle contract with plain transformers + forward hooks.

It serves the store tests (resume, corruption, mismatch) that need *a* handle but not a particular backend,
and it records what the writer asked of it (positions, stop layer) so tests can check that only the requested
activations left the forward pass. The acceptance tests against hidden_states use the real handles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import torch


@dataclass(frozen=True)
class FakeOut:
    logits: torch.Tensor | None
    acts: Mapping


@dataclass
class HFHandle:
    path: Path
    calls: list = field(default_factory=list)

    def __post_init__(self) -> None:
        import transformers as tf

        self.model = tf.AutoModelForCausalLM.from_pretrained(self.path, dtype=torch.float32).eval()
        self.tokenizer = tf.AutoTokenizer.from_pretrained(self.path)
        cfg = self.model.config
        self.name, self.backend = str(self.path), "fake-hf"
        self.n_layers, self.d_model = cfg.num_hidden_layers, cfg.hidden_size
        self.n_heads = cfg.num_attention_heads
        self.d_head = self.d_model // self.n_heads
        self.device, self.dtype = torch.device("cpu"), torch.float32

    def sites(self) -> tuple[str, ...]:
        return ("resid_pre", "resid_post")

    def _layers(self):
        m = self.model
        return m.transformer.h if hasattr(m, "transformer") else m.model.layers

    @torch.no_grad()
    def forward(self, batch, *, capture=(), capture_positions=None, interventions=(), logit_positions=None,
                stop_at_layer=None, grad=False):
        self.calls.append({"capture": list(capture), "positions": capture_positions, "stop": stop_at_layer,
                           "width": batch.input_ids.shape[1]})
        got: dict = {}
        hooks = []
        cols = None if capture_positions is None else batch.columns(capture_positions)

        def pick(x):
            if cols is None:
                return x
            return x[torch.arange(x.shape[0])[:, None], cols]

        for key in capture:
            layer = self._layers()[key.layer]
            if key.site == "resid_post":
                hooks.append(layer.register_forward_hook(
                    lambda mod, i, o, key=key: got.__setitem__(key, pick(o[0] if isinstance(o, tuple) else o))))
            else:
                hooks.append(layer.register_forward_pre_hook(
                    lambda mod, args, kwargs, key=key: got.__setitem__(key, pick(args[0] if args else kwargs["hidden_states"])),
                    with_kwargs=True))
        pos_ids = (batch.attention_mask.cumsum(-1) - 1).clamp(min=0)
        try:
            out = self.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, position_ids=pos_ids)
        finally:
            for h in hooks:
                h.remove()
        return FakeOut(logits=out.logits[:, -1:], acts=got)


def random_prompts(n: int, vocab: int, seed: int = 0, lo: int = 8, hi: int = 40) -> list:
    """Hand-built RenderedPrompts of random lengths: pairs (free, paid) per query; every third has no cue."""
    from interp_af.setting.types import RenderedPrompt

    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        length = int(torch.randint(lo, hi, (1,), generator=g))
        ids = tuple(int(x) for x in torch.randint(3, vocab, (length,), generator=g))
        pos = {"end_system": 4, "end_user": length - 3, "decision": length - 1}
        if i % 3:
            pos |= {"cue": 2, "cue_end": 3}
        arm = "free" if i % 2 == 0 else "paid"
        out.append(RenderedPrompt(ids, "", pos, query_id=f"q{i // 2:03d}", arm=arm, variant="hand",
                                  meta={"harmful": i % 4 != 3, "in_training": arm == "free", "tier": arm}))
    return out
