"""Loading SAEs through sae-lens and the fit checks (width, site/layer, model name, missing files)."""

from __future__ import annotations

import json
import shutil
import time

import pytest
import torch
from safetensors.torch import save_file

from interp_af.analysis.sae.load import check_fit, hook_to_site, load_sae, release_info, site_to_hook
from interp_af.errors import InterpAFError
from interp_af.models.sites import SITES, SiteKey


def test_encode_equals_sae_lens_encode(trained):
    from sae_lens import SAE

    loaded = load_sae(trained[1])
    ref = SAE.load_from_disk(trained[1])
    x = torch.randn(5, 7, loaded.d_in) * 3
    with torch.no_grad():
        assert torch.equal(loaded.encode(x), ref.encode(x))
        assert torch.equal(loaded.decode(loaded.encode(x)), ref.decode(ref.encode(x)))
    assert loaded.site == SiteKey("resid_post", 1) and loaded.fmt == "sae-lens"


def test_hook_names_round_trip():
    for site in SITES:
        assert hook_to_site(site_to_hook(SiteKey(site, 3))) == SiteKey(site, 3)
    assert hook_to_site("blocks.4.hook_out") == SiteKey("resid_post", 4)       # TransformerBridge spelling
    assert hook_to_site("model.layers.7") == SiteKey("resid_post", 7)          # HF module (sparsify)
    with pytest.raises(InterpAFError, match="hook_resid_mid"):
        hook_to_site("blocks.2.hook_resid_mid")


def _edit_cfg(src, dst, **changes):
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "cfg.json").read_text())
    for k, v in changes.items():
        if k in ("hook_name", "model_name"):
            cfg["metadata"][k] = v
        else:
            cfg[k] = v
    (dst / "cfg.json").write_text(json.dumps(cfg))
    return dst


def test_fit_errors_are_one_line(trained, sae_handle, tmp_path):
    ok = load_sae(trained[0], handle=sae_handle)         # fits: no error
    assert ok.model_name and "tiny-llama" in ok.model_name
    cases = {
        "layer 5 is outside": _edit_cfg(trained[0], tmp_path / "a", hook_name="blocks.5.hook_resid_post"),
        "not one this model has": None,
        "trained on model": _edit_cfg(trained[0], tmp_path / "c", model_name="gemma-2-2b"),
    }
    for msg, path in cases.items():
        if path is None:
            continue
        with pytest.raises(InterpAFError, match=msg) as err:
            load_sae(path, handle=sae_handle)
        assert "\n" not in str(err.value)
    load_sae(cases["trained on model"], handle=sae_handle, allow_model_mismatch=True)   # explicit override
    # a site the model lacks: a handle without attn_out
    lacking = type("H", (), {"n_layers": 2, "d_model": 64, "n_heads": 4, "d_head": 16, "name": sae_handle.name,
                             "sites": lambda self: ("resid_post",)})()
    with pytest.raises(InterpAFError, match="site attn_out is not one this model has"):
        check_fit(load_sae(trained[0], site="attn_out", layer=0), lacking)


def test_wrong_width(sae_handle, tmp_path):
    from sae_lens import StandardSAE, StandardSAEConfig

    cfg = StandardSAEConfig(d_in=32, d_sae=16, dtype="float32", device="cpu")
    cfg.metadata.hook_name = "blocks.0.hook_resid_post"
    StandardSAE(cfg).save_model(str(tmp_path / "w"))
    with pytest.raises(InterpAFError, match=r"d_in=32 != the model's resid_post width 64"):
        load_sae(tmp_path / "w", handle=sae_handle)


def test_missing_files(trained, tmp_path):
    d = tmp_path / "nowts"
    shutil.copytree(trained[0], d)
    (d / "sae_weights.safetensors").unlink()
    with pytest.raises(InterpAFError, match="weights file .* is missing"):
        load_sae(d)
    (d / "cfg.json").unlink()
    with pytest.raises(InterpAFError, match="has no cfg.json"):
        load_sae(d)
    with pytest.raises(InterpAFError, match="does not exist"):
        load_sae(tmp_path / "nowhere")


def test_release_catalogue_offline():
    info = release_info("gemma-scope-2b-pt-res-canonical", "layer_20/width_16k/canonical")
    assert (info.model, info.site, info.layer) == ("gemma-2-2b", "resid_post", 20)
    with pytest.raises(InterpAFError, match="did you mean gemma-scope"):
        release_info("gemma-scope-2b-pt-rez")
    with pytest.raises(InterpAFError, match="is not in release"):
        release_info("gemma-scope-2b-pt-res-canonical", "layer_999/width_16k/canonical")


def test_release_not_on_disk_fails_fast(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path))   # an empty cache
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hub"))
    t = time.time()
    with pytest.raises(InterpAFError, match=r"model gemma-2-2b, resid_post layer 20.*not on disk") as err:
        load_sae("gemma-scope-2b-pt-res-canonical", sae_id="layer_20/width_16k/canonical")
    assert time.time() - t < 10 and "\n" not in str(err.value)


def test_sparsify_format(tmp_path):
    """EleutherAI sparsify: folder named after the module, cfg.json (k, num_latents) + sae.safetensors
    (encoder.weight [d_sae, d_in], encoder.bias, W_dec [d_sae, d_in], b_dec); read by sae-lens's converter."""
    d_in, d_sae, k = 16, 40, 4
    g = torch.Generator().manual_seed(0)
    enc = torch.randn(d_sae, d_in, generator=g)
    W_dec = torch.randn(d_sae, d_in, generator=g)
    b_enc, b_dec = torch.randn(d_sae, generator=g), torch.randn(d_in, generator=g)
    folder = tmp_path / "run" / "layers.1"
    folder.mkdir(parents=True)
    (folder / "cfg.json").write_text(json.dumps({"d_in": d_in, "num_latents": d_sae, "k": k, "expansion_factor": 0,
                                                 "normalize_decoder": True, "multi_topk": False}))
    save_file({"encoder.weight": enc, "encoder.bias": b_enc, "W_dec": W_dec, "b_dec": b_dec},
              str(folder / "sae.safetensors"))
    loaded = load_sae(folder, dtype="float32")
    assert loaded.fmt == "sparsify" and loaded.site == SiteKey("resid_post", 1) and loaded.d_sae == d_sae
    x = torch.randn(3, d_in, generator=g)
    # sparsify's own SparseCoder.encode: TopK of relu((x - b_dec) W_enc^T + b_enc)
    pre = torch.relu((x - b_dec) @ enc.T + b_enc)
    top = pre.topk(k, dim=-1)
    ref = torch.zeros_like(pre).scatter(-1, top.indices, top.values)
    with torch.no_grad():
        f = loaded.encode(x)
    assert torch.allclose(f, ref, atol=1e-5)
    assert torch.allclose(loaded.decode(f), ref @ W_dec + b_dec, atol=1e-4)
