"""Context length: prompts longer than the model's context fail in one line, before and inside the forward pass."""

from __future__ import annotations

import pytest
import torch

from interp_af.errors import InterpAFError
from interp_af.models.context import check_context, config_context
from interp_af.models.handle import load_model
from interp_af.setting.queries import benign_queries
from interp_af.setting.twins import make_twins

N_CTX = 96   # far shorter than the setting's default prompt (several hundred tokens with a small vocabulary)


@pytest.fixture(scope="module")
def short_models(tmp_path_factory):
    """GPT-2 (learned positions: crashes past n_positions) and Llama (RoPE: runs past it silently) at 96 tokens."""
    from interp_af.testing.tiny import TinySpec, build_tiny_model

    root = tmp_path_factory.mktemp("short")
    return {arch: build_tiny_model(root / f"short-{arch}", TinySpec(arch=arch, n_ctx=N_CTX)) for arch in ("gpt2", "llama")}


@pytest.mark.parametrize("backend", ["tl", "nnsight"])
@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_short_context_is_refused_in_one_line(arch, backend, short_models):
    h = load_model(short_models[arch], backend=backend)
    assert h.n_ctx == N_CTX
    twins = make_twins(h.tokenizer, benign_queries()[:3], "default")
    longest = max((p for t in twins for p in (t.a, t.b)), key=len)
    assert len(longest) > N_CTX

    # before any forward pass: names the longest prompt, its length, the limit and the fix
    with pytest.raises(InterpAFError) as err:
        check_context(h, twins, extra_tokens=1)
    msg = str(err.value)
    assert "\n" not in msg
    assert f"query {longest.query_id} (arm {longest.arm}, variant default)" in msg
    assert f"is {len(longest)} tokens + 1 appended token(s)" in msg and f"({N_CTX} tokens)" in msg
    assert "--variant" in msg and "longer context" in msg

    # the API entry points check before running anything
    from interp_af.analysis.gap import compute_gap

    with pytest.raises(InterpAFError, match=f"longer than the context .*{N_CTX} tokens"):
        compute_gap(h, twins, progress=False)

    # and the forward pass itself refuses (GPT-2 used to raise a raw IndexError, Llama on nnsight ran past it)
    with pytest.raises(InterpAFError, match=f"batch row 0 is {len(longest)} tokens, longer than the context"):
        h.forward(h.collate([longest.input_ids]))
    ok = h.forward(h.collate([list(longest.input_ids[:N_CTX])]))   # exactly at the limit: runs
    assert torch.isfinite(ok.logits).all()
    assert check_context(h, [longest.input_ids[:N_CTX - 1]], extra_tokens=1) == N_CTX


def test_capture_checks_context_before_the_first_pass(short_models, tmp_path):
    from interp_af.acts import capture

    h = load_model(short_models["llama"], backend="nnsight")
    twins = make_twins(h.tokenizer, benign_queries()[:2], "default")
    prompts = [p for t in twins for p in (t.a, t.b)]
    with pytest.raises(InterpAFError, match="longer than the context"):
        capture(h, prompts, tmp_path / "cap", progress=False)
    assert not (tmp_path / "cap").exists()   # nothing written


def test_config_context_reads_every_family(short_models):
    import transformers as tf

    for arch in ("gpt2", "llama"):
        assert config_context(tf.AutoConfig.from_pretrained(short_models[arch])) == N_CTX
    assert config_context(object()) is None
    assert check_context(object(), [[1] * 10_000]) == 10_000   # unknown context: nothing to check
