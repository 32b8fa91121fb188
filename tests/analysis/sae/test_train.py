"""Training SAEs offline with sae-lens's trainer, saved in sae-lens format."""

from __future__ import annotations

import json

import pytest
import torch

from interp_af.analysis.sae.train import SAETrainConfig, collect_activations, reconstruction_stats, train_saes
from interp_af.errors import InterpAFError
from interp_af.models.sites import SiteKey


def test_trained_saes_are_sae_lens_format_and_beat_init(trained, sae_handle, sae_prompts, sae_dt):
    from sae_lens import SAE, TopKTrainingSAE, TopKTrainingSAEConfig

    for layer, path in trained.items():
        sae = SAE.load_from_disk(path)
        assert sae.cfg.metadata.hook_name == f"blocks.{layer}.hook_resid_post"
        assert sae.cfg.metadata.model_name == sae_handle.name
        info = json.loads((path / "training.json").read_text())
        assert info["n_train_tokens"] > 0 and 0 < info["holdout"]["l0"] <= 6
        acts = collect_activations(sae_handle, sae_prompts, [SiteKey("resid_post", layer)], dt=sae_dt)
        acts = acts[SiteKey("resid_post", layer)]
        torch.manual_seed(1)
        init = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=acts.shape[1], d_sae=96, k=6))
        got, base = reconstruction_stats(sae, acts), reconstruction_stats(init, acts)
        assert got["fve"] > base["fve"] + 0.2, (got, base)


def test_collect_activations_leaves_out_bos(sae_handle, sae_prompts, sae_dt):
    key = SiteKey("resid_post", 0)
    acts = collect_activations(sae_handle, sae_prompts[:3], [key], dt=sae_dt)[key]
    assert acts.shape[0] == sum(len(p) + len(sae_dt.shared) - 1 for p in sae_prompts[:3])
    batch = sae_handle.collate([list(sae_prompts[0].input_ids) + list(sae_dt.shared)])
    ref = sae_handle.forward(batch, capture=(key,)).acts[key][0, 1:]
    assert torch.allclose(acts[: ref.shape[0]], ref, atol=1e-6)


def test_refuses_overwrite_and_bad_layers(trained, sae_handle, sae_prompts):
    out = trained[0].parent
    with pytest.raises(InterpAFError, match="exist; pass overwrite=True"):
        train_saes(sae_handle, sae_prompts, out, SAETrainConfig(layers=(0,), steps=1))
    with pytest.raises(InterpAFError, match=r"layers \[7\] do not exist"):
        train_saes(sae_handle, sae_prompts, out / "x", SAETrainConfig(layers=(7,), steps=1))
    assert not (out / "x").exists()


def test_overwrite_replaces_only_sae_folders_it_wrote(sae_handle, sae_prompts, tmp_path):
    from interp_af import owned

    cfg = SAETrainConfig(layers=(0,), d_sae=16, k=2, steps=2, batch_size=32)
    out = tmp_path / "saes"
    first = train_saes(sae_handle, sae_prompts[:4], out, cfg)[0].path
    assert owned.is_owned(first) and sorted(p.name for p in out.iterdir()) == [owned.MARKER, "resid_post.0"]
    (first / owned.MARKER).unlink()              # a folder from before markers: recognised by its training.json
    again = train_saes(sae_handle, sae_prompts[:4], out, cfg, overwrite=True)[0].path
    assert again == first and (again / "training.json").exists()
    assert sorted(p.name for p in out.iterdir()) == [owned.MARKER, "resid_post.0"]   # no temporary left
    foreign = tmp_path / "mine" / "resid_post.0"  # someone's SAE (e.g. a downloaded one) under the same name
    foreign.mkdir(parents=True)
    (foreign / "cfg.json").write_text("{}")
    with pytest.raises(InterpAFError, match="was not written by interp_af") as err:
        train_saes(sae_handle, sae_prompts[:4], foreign.parent, cfg, overwrite=True)
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in foreign.iterdir()) == ["cfg.json"]
