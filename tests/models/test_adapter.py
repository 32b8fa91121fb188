"""A local random LoRA adapter changes outputs exactly as peft's own forward does, on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from interp_af.errors import InterpAFError
from interp_af.models.handle import load_model, position_ids
from tests.models.conftest import BACKENDS, random_prompts

TOL = 1e-4
TARGETS = {"llama": ["q_proj", "v_proj", "down_proj"], "gpt2": ["c_attn", "c_fc"]}


def make_adapter(base_dir: Path, out: Path, targets: list[str]) -> Path:
    """peft ``get_peft_model`` with a random (non-zero) B, saved with ``save_pretrained``."""
    import transformers as tf
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(1)
    base = tf.AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=targets, init_lora_weights=False,
                     fan_in_fan_out=targets == TARGETS["gpt2"])
    peft_model = get_peft_model(base, cfg)
    peft_model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def adapters(tiny_models, tmp_path_factory):
    root = tmp_path_factory.mktemp("lora")
    return {arch: make_adapter(tiny_models[arch], root / f"lora-{arch}", TARGETS[arch]) for arch in TARGETS}


def peft_logits(base_dir: Path, adapter: Path, batch) -> torch.Tensor:
    import transformers as tf
    from peft import PeftModel

    base = tf.AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, adapter).eval()   # unmerged: peft's own LoRA forward
    with torch.no_grad():
        return model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                     position_ids=position_ids(batch)).logits[:, -1]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arch", list(TARGETS))
def test_adapter_matches_peft_forward(arch, backend, tiny_models, adapters, handles):
    h = load_model(tiny_models[arch], backend=backend, adapter=adapters[arch])
    batch = h.collate(random_prompts())
    want = peft_logits(tiny_models[arch], adapters[arch], batch)
    got = h.forward(batch).logits[:, 0]
    base = handles(arch, backend).forward(batch).logits[:, 0]
    print(f"\n{arch}/{backend} + LoRA: max |logits - peft| = {(got - want).abs().max().item():.2e}")
    torch.testing.assert_close(got, want, atol=TOL, rtol=0)
    assert (got - base).abs().max() > 1e-3   # the adapter does change the model


def test_adapter_for_another_base_model_is_rejected(tiny_models, adapters, tmp_path):
    # GPT-2's module names do not exist in Llama
    with pytest.raises(InterpAFError, match="does not fit"):
        load_model(tiny_models["llama"], adapter=adapters["gpt2"])
    # same module names, other widths: a Llama adapter on a wider Llama
    from interp_af.testing.tiny import TinySpec, build_tiny_model

    wide = build_tiny_model(tmp_path / "wide-llama", TinySpec(arch="llama", d_model=96, n_heads=4))
    with pytest.raises(InterpAFError, match="does not fit") as err:
        load_model(wide, backend="nnsight", adapter=adapters["llama"])
    assert "\n" not in str(err.value)
    with pytest.raises(InterpAFError, match="adapter path .* does not exist"):
        load_model(tiny_models["llama"], adapter=tmp_path / "nope")
    with pytest.raises(InterpAFError, match="has no adapter_config.json"):
        load_model(tiny_models["llama"], adapter=tmp_path)
