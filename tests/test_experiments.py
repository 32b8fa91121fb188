"""The study configs in ``experiments/`` are valid, and the real-model ones run end to end.

A real-model config cannot run here (no weights, no GPU, no network), so each one runs against a random-init
model of the same architecture family scaled down (d_model 64, 2 layers), with its ``[model]`` table pointed at
that model (float32, CPU, no device_map, local instead of NDIF) and its work shrunk. Everything else in the
config (variants, contrasts, sites, probe labels, stages) is the file's own, so a real run fails only for lack
of weights or hardware. The "sae" stage is left out of these runs: the configs name public SAE releases
(Llama Scope, Gemma Scope, Goodfire) that cannot be downloaded here and do not fit a d64 model; the SAE
names are checked against sae-lens's offline catalogue instead.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from interp_af.errors import InterpAFError
from interp_af.pipeline.config import StudyConfig, load_config
from interp_af.stages import stages

STAGES = tuple(stages())

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
CONFIGS = sorted(p.name for p in EXPERIMENTS.glob("*.toml"))
REAL = {  # config -> architecture family of its scaled-down stand-in
    "llama-3.1-8b-instruct.toml": "llama",
    "gemma-2-9b-it.toml": "gemma2",
    "llama-3.3-70b-lora.toml": "llama",
    "llama-3.1-405b-ndif.toml": "llama",
}
PACKAGED = ("smollm2-135m-instruct.toml", "gemma-3-270m.toml")   # real models that PyPI packages ship
COMPLIANCE_KEYS = ("free", "paid", "gap", "gap_ci")


def test_every_target_has_a_config():
    assert set(CONFIGS) == {"organism.toml", *REAL, *PACKAGED}


@pytest.mark.parametrize("name", CONFIGS)
def test_config_is_valid(name):
    from interp_af.models.sites import SITES
    from interp_af.setting.prompts import get_variant

    path = EXPERIMENTS / name
    cfg = load_config(path)
    assert cfg.name == path.stem
    assert cfg.stages and set(cfg.stages) <= set(STAGES)
    for v in (cfg.setting.variant, *cfg.setting.contrasts):
        assert get_variant(v).name == v
    assert set(cfg.capture.sites) <= set(SITES) and set(cfg.patching.sites) <= set(SITES)
    assert cfg.model.backend in ("auto", "tl", "nnsight")
    # every config documents target, hardware, runtime and how to point at local weights
    header = path.read_text().split("\nname")[0].lower()
    for word in ("target:", "hardware:", "runtime:", "weights:"):
        assert word in header, f"{name}: header lacks {word!r}"


def test_organism_config_is_the_default_study():
    assert load_config(EXPERIMENTS / "organism.toml") == load_config(None)


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_config_targets(name):
    cfg = load_config(EXPERIMENTS / name)
    assert cfg.model.path != "organism" and cfg.model.dtype == "bfloat16"
    assert cfg.setting.queries == "" and cfg.setting.variant == "default"
    assert set(cfg.setting.contrasts) == {"no-training-info", "inverted-cue", "three-tiers"}
    if "405b" in name:
        assert cfg.model.backend == "nnsight" and cfg.model.remote and "sae" not in cfg.stages
    if "70b" in name:
        assert cfg.model.device_map == "auto"


@pytest.mark.parametrize("name", [n for n in sorted(REAL) if "sae" in load_config(EXPERIMENTS / n).stages])
def test_sae_release_is_in_sae_lens_catalogue(name):
    """``[sae] path`` is "<release>/<sae id>" (the id may hold slashes); both must be in the shipped catalogue."""
    from interp_af.analysis.sae import release_info

    cfg = load_config(EXPERIMENTS / name)
    release, _, sae_id = cfg.sae.path.partition("/")
    info = release_info(release, sae_id)
    family = "gemma" if "gemma" in name else "llama"
    assert family in info.model.lower()


@pytest.mark.parametrize("name", PACKAGED)
def test_packaged_model_configs(name):
    """The packaged real models: their own target, the real-model contrasts, every stage, patching screened."""
    from interp_af.targets import target_for

    cfg = load_config(EXPERIMENTS / name)
    assert cfg.model.path == name.removesuffix(".toml") and target_for(cfg.model.path).name == cfg.model.path
    assert cfg.setting.variant == "default" and cfg.setting.queries == ""
    assert set(cfg.setting.contrasts) == {"no-training-info", "inverted-cue", "three-tiers"}
    assert cfg.stages == STAGES and cfg.patching.mode == "screen"


def test_gemma_config_names_a_gemma_scope_2_sae_for_this_model():
    from interp_af.analysis.sae import release_info
    from interp_af.analysis.sae.load import _norm_name

    cfg = load_config(EXPERIMENTS / "gemma-3-270m.toml")
    release, _, sae_id = cfg.sae.path.partition("/")
    info = release_info(release, sae_id)
    assert release.startswith("gemma-scope-2-270m-pt") and info.repo_id == "google/gemma-scope-2-270m-pt"
    assert _norm_name(info.model) == "gemma-3-270m"           # the base model the package ships, by its title
    assert info.site == "resid_post" and 0 <= info.layer < 18  # a residual SAE inside the model's 18 layers


def test_smollm2_config_ships_its_sae_with_the_training_record():
    from interp_af.analysis.sae.load import load_sae

    cfg = load_config(EXPERIMENTS / "smollm2-135m-instruct.toml")
    folder = EXPERIMENTS.parent / cfg.sae.path
    sae = load_sae(folder)
    assert str(sae.site) == "resid_post.15" and sae.d_in == 576
    record = json.loads((folder / "training.json").read_text())
    assert record["site"] == "resid_post.15" and record["n_train_tokens"] > 0
    assert 0 < record["holdout"]["fve"] <= 1 and record["holdout"]["l0"] > 0
    # trained on held-apart requests: none of them is among the ones the study measures
    from interp_af.setting.queries import load_queries

    studied = {q.text for q in load_queries(limit=cfg.setting.limit)}
    trained_on = {q.text for q in load_queries(folder.parent / "train_queries.csv")}
    assert trained_on and not studied & trained_on


def test_an_unknown_key_names_the_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text((EXPERIMENTS / "llama-3.1-8b-instruct.toml").read_text().replace("limit = 100", "limt = 100"))
    line = next(i for i, t in enumerate(bad.read_text().splitlines(), 1) if t.startswith("limt"))
    with pytest.raises(InterpAFError, match=rf"bad.toml:{line}: unknown key '\[setting\] limt'"):
        load_config(bad)


# ------------------------------------------------------------------------------ real-model configs, scaled down
@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory) -> dict[str, Path]:
    """Random-init llama and gemma2 (d64, 2 layers), plus a random (non-identity) LoRA adapter on the llama."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from interp_af.testing.tiny import TinySpec, build_tiny_model

    root = tmp_path_factory.mktemp("experiments")
    paths = {a: build_tiny_model(root / f"tiny-{a}", TinySpec(arch=a, d_model=64, n_layers=2))
             for a in ("llama", "gemma2")}
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(paths["llama"])
    # init_lora_weights=False: B is random too, so the merged adapter really changes the model
    lora = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                           init_lora_weights=False))
    lora.save_pretrained(root / "tiny-llama-lora")
    paths["lora"] = root / "tiny-llama-lora"
    return paths


def shrink(cfg: StudyConfig, model_dir: Path, adapter: Path | None = None, *, all_sites: bool = True) -> StudyConfig:
    """The same study on a local stand-in model, with the work cut to a CI budget.

    ``all_sites=False`` patches attention heads only (layer x head over all positions): exact patching of
    ~1,100-token prompts costs minutes per residual site even at d64 (patched position by position), so one
    config (the 8B Llama) covers every site of its own and the others the cheapest one."""
    r = dataclasses.replace
    return r(
        cfg,
        stages=tuple(s for s in cfg.stages if s != "sae"),
        model=r(cfg.model, path=str(model_dir), dtype="float32", device="cpu", device_map="", remote=False,
                adapter=str(adapter) if adapter else ""),
        # benign controls off: 40 benign queries x 4 variants of ~1,100-token prompts would dominate the run
        setting=r(cfg.setting, limit=4, benign=False),
        gap=r(cfg.gap, n_boot=200),
        capture=r(cfg.capture, layers=()),
        probes=r(cfg.probes, folds=2),
        patching=r(cfg.patching, n_queries=1, ig_steps=2, ig_queries=1,
                   sites=cfg.patching.sites if all_sites else ("head_out",)),
        steering=r(cfg.steering, n_random=1, layers=()),
    )


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_config_runs_on_a_scaled_down_model(name, stand_ins, tmp_path):
    from interp_af.pipeline.study import run_study

    cfg = load_config(EXPERIMENTS / name)
    adapter = stand_ins["lora"] if "lora" in name else None
    small = shrink(cfg, stand_ins[REAL[name]], adapter, all_sites=name == "llama-3.1-8b-instruct.toml")
    if REAL[name] == "gemma2":
        # Gemma 2 goes through TransformerLens's TransformerBridge, ~10x slower than plain transformers on CPU;
        # the two backends are shown equal in tests/models, so the CI run uses nnsight to fit its budget.
        small = dataclasses.replace(small, model=dataclasses.replace(small.model, backend="nnsight"))
    result = run_study(small, tmp_path / "run")
    assert (tmp_path / "run" / "report.html").stat().st_size > 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    for key in COMPLIANCE_KEYS:
        assert summary["compliance"][key] is not None, key
    assert summary["compliance"]["variant"] == "default"
    assert set(summary["compliance"]["contrasts"]) == set(cfg.setting.contrasts)
    assert [r.stage for r in result.records] == list(small.stages)
    for stage in small.stages:
        assert (tmp_path / "run" / stage / "done.json").is_file(), stage


@pytest.mark.parametrize("name,family", [("smollm2-135m-instruct.toml", "llama"), ("gemma-3-270m.toml", "gemma2")])
def test_packaged_config_runs_on_a_scaled_down_model(name, family, stand_ins, tmp_path):
    """The packaged-model studies (on nnsight, patching screened) through every stage but the SAE (SmolLM2's
    is 576 wide, and tests/models/test_real_smollm2.py checks it against the real model; Gemma Scope 2 needs a
    download) on a d64 stand-in of the same family (Gemma 2 for Gemma 3: the tiny builder has no Gemma 3)."""
    from interp_af.pipeline.study import run_study

    cfg = load_config(EXPERIMENTS / name)
    r = dataclasses.replace
    small = shrink(cfg, stand_ins[family], all_sites=False)
    small = r(small, model=r(small.model, backend="nnsight"), capture=r(small.capture, layers=(0, 1)),
              patching=r(small.patching, mode=cfg.patching.mode, confirm_top=2))
    run_study(small, tmp_path / "run")
    done = json.loads((tmp_path / "run" / "patching" / "done.json").read_text())["summary"]
    assert done["mode"] == "screen" and done["swept"].startswith("screen: attribution patching (AtP)")
    assert all(c["exact"] == 2 and c["screened_only"] == c["cells"] - 2 for c in done["coverage"].values())
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert set(summary["compliance"]["contrasts"]) == set(cfg.setting.contrasts)
