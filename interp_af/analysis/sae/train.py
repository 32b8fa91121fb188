"""Training SAEs on a model's residual stream, offline, with sae-lens's own trainer.

sae-lens's ``SAETrainer`` takes any iterator of activation batches as its data provider, so no dataset download
and no ``LanguageModelSAETrainingRunner`` are needed: we collect the activations of the studied prompts once
through the model handle (every prompt position except BOS, whose huge norm would dominate the loss and which
the analyses never splice), shuffle them in memory, and feed minibatches. The SAE is a TopK SAE (L0 fixed by
``k``, which keeps the sparsity/fidelity trade-off one knob) and is saved in sae-lens format (``cfg.json`` +
``sae_weights.safetensors``, loadable by ``SAE.load_from_disk``), with the hook name and model name in its
metadata so that :func:`interp_af.analysis.sae.load.check_fit` can check it, and a ``training.json`` beside it
(data, config and held-out quality).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from jaxtyping import Float
from torch import Tensor
from tqdm import tqdm

from interp_af.models.wrap import as_handle
from interp_af import atomic, owned
from interp_af.checks import fraction, nonneg_int, positive_float, positive_int
from interp_af.errors import InterpAFError
from interp_af.models.sites import SiteKey
from interp_af.setting.types import RenderedPrompt

from . import _run
from .load import site_to_hook


@dataclass(frozen=True)
class SAETrainConfig:
    """How to train one TopK SAE per layer (the same config for every layer)."""

    layers: tuple[int, ...]
    site: str = "resid_post"
    d_sae: int = 1024            # number of features
    k: int = 16                  # active features per token (TopK)
    steps: int = 1500            # optimiser steps
    batch_size: int = 512        # tokens per step
    lr: float = 5e-4
    seed: int = 0
    skip_first: int = 1          # leading prompt positions left out of the data (1 = BOS)
    holdout: float = 0.1         # fraction of tokens held out to measure FVE / L0 / dead features
    model_name: str = ""         # recorded in metadata.model_name ("" = the handle's name)

    def __post_init__(self) -> None:
        if not self.layers:
            raise InterpAFError("SAETrainConfig.layers is empty; name at least one layer to train an SAE on")
        positive_int(self.d_sae, "d_sae")
        positive_int(self.k, "k")
        if self.k > self.d_sae:
            raise InterpAFError(f"k={self.k} exceeds d_sae={self.d_sae}; a TopK SAE keeps at most d_sae features "
                                f"active")
        positive_int(self.steps, "steps")
        positive_int(self.batch_size, "batch_size")
        positive_float(self.lr, "lr")
        nonneg_int(self.skip_first, "skip_first")
        fraction(self.holdout, "holdout", lo_open=False)


@dataclass(frozen=True)
class TrainedSAE:
    """Where one trained SAE lies and how well it reconstructs held-out tokens."""

    site: SiteKey
    path: Path
    n_train_tokens: int
    n_holdout_tokens: int
    fve: float
    l0: float
    dead_fraction: float
    extra: dict[str, Any] = field(default_factory=dict)


def collect_activations(handle: Any, prompts: Sequence[RenderedPrompt], keys: Sequence[SiteKey], *,
                        dt: Any = None, batch_size: int = 16, skip_first: int = 1,
                        ) -> dict[SiteKey, Float[Tensor, "tokens d"]]:
    """Activations at every prompt position (minus the first ``skip_first``) of every prompt, per site key.
    With ``dt``, the metric inputs (prompt + shared completion prefix) are used, as the analyses do."""
    positive_int(batch_size, "batch_size")
    nonneg_int(skip_first, "skip_first")
    handle = as_handle(handle)
    empty = type("NoShared", (), {"shared": ()})()
    out: dict[SiteKey, list[Tensor]] = {k: [] for k in keys}
    stop = max(k.layer for k in keys) + 1
    for pb in tqdm(list(_run.batches(handle, prompts, dt or empty, (), batch_size)), desc="SAE activations",
                   leave=False):
        res = handle.forward(pb.batch, capture=tuple(keys), stop_at_layer=stop)
        spans = _run.row_spans(pb.batch, skip_first)
        for k in keys:
            out[k].extend(r[0].float().cpu() for r in _run.gather_rows(res.acts[k], pb.batch, spans))
    return {k: torch.cat(v) for k, v in out.items()}


def _batches(acts: Tensor, batch_size: int, seed: int) -> Iterator[Tensor]:
    """Endless shuffled minibatches over an in-memory activation table (epochs reshuffled, seeded)."""
    gen = torch.Generator().manual_seed(seed)
    while True:
        perm = torch.randperm(acts.shape[0], generator=gen)
        for start in range(0, acts.shape[0] - batch_size + 1, batch_size):
            yield acts[perm[start:start + batch_size]]


@torch.no_grad()
def reconstruction_stats(sae: Any, acts: Float[Tensor, "n d"]) -> dict[str, float]:
    """FVE (1 - SSE / total variance around the mean), mean L0, and the fraction of features that never fire."""
    f = sae.encode(acts)
    rec = sae.decode(f)
    sse = (acts - rec).pow(2).sum()
    sst = (acts - acts.mean(0)).pow(2).sum()
    return {"fve": float(1 - sse / sst), "l0": float((f > 0).float().sum(-1).mean()),
            "dead_fraction": float(((f > 0).sum(0) == 0).float().mean())}


def train_sae(acts: Float[Tensor, "n d"], key: SiteKey, cfg: SAETrainConfig, model_name: str) -> Any:
    """Train one TopK SAE on ``acts`` with sae-lens's ``SAETrainer``; returns the inference SAE (``TopKSAE``)."""
    os.environ.setdefault("WANDB_MODE", "disabled")
    from sae_lens import LoggingConfig, SAETrainer, TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.config import SAETrainerConfig

    if acts.shape[0] < cfg.batch_size:
        raise InterpAFError(f"only {acts.shape[0]} activation rows for {key}, fewer than batch_size="
                            f"{cfg.batch_size}; pass more prompts or a smaller batch size")
    torch.manual_seed(cfg.seed)
    sae_cfg = TopKTrainingSAEConfig(d_in=acts.shape[1], d_sae=cfg.d_sae, k=cfg.k, dtype="float32", device="cpu")
    sae_cfg.metadata.hook_name = site_to_hook(key)
    sae_cfg.metadata.model_name = model_name
    sae_cfg.metadata.prepend_bos = True
    sae = TopKTrainingSAE(sae_cfg)
    window = max(50, cfg.steps // 5)
    trainer_cfg = SAETrainerConfig(
        total_training_samples=cfg.steps * cfg.batch_size, train_batch_size_samples=cfg.batch_size, lr=cfg.lr,
        lr_end=cfg.lr / 10, lr_scheduler_name="cosineannealing", lr_warm_up_steps=min(100, cfg.steps // 10),
        lr_decay_steps=0, dead_feature_window=window, feature_sampling_window=window,
        logger=LoggingConfig(log_to_wandb=False), n_batches_for_norm_estimate=10,
    )
    trained = SAETrainer(trainer_cfg, sae, _batches(acts, cfg.batch_size, cfg.seed)).fit()
    with tempfile.TemporaryDirectory() as tmp:  # TrainingSAE -> inference SAE through sae-lens's own format
        trained.save_inference_model(tmp)
        from sae_lens import SAE

        return SAE.load_from_disk(tmp)


def train_saes(handle: Any, prompts: Sequence[RenderedPrompt], out_dir: str | Path, cfg: SAETrainConfig, *,
               dt: Any = None, batch_size: int = 16, overwrite: bool = False) -> list[TrainedSAE]:
    """Train one SAE per layer in ``cfg.layers`` on the activations of ``prompts`` and save each in sae-lens
    format under ``out_dir/<site>.<layer>/``. Returns where they went and their held-out quality.

    ``overwrite`` replaces SAE folders this toolkit wrote (they carry its marker, or a ``training.json`` of its
    trainer); any other folder in the way is refused before anything is computed."""
    positive_int(batch_size, "batch_size")
    handle = as_handle(handle)
    out_dir = Path(out_dir)
    bad = [L for L in cfg.layers if not 0 <= L < int(handle.n_layers)]
    if bad:
        raise InterpAFError(f"layers {bad} do not exist (model has 0..{int(handle.n_layers) - 1}); pass valid layers")
    targets = {L: out_dir / f"{cfg.site}.{L}" for L in cfg.layers}
    exists = [str(p) for p in targets.values() if p.exists()]
    if exists and not overwrite:
        raise InterpAFError(f"SAE folder(s) {', '.join(exists)} exist; pass overwrite=True (CLI: --overwrite)")
    for p in targets.values():
        if p.is_dir() and owned.owner(p) is None and _trained_here(p):
            owned.adopt_dir(p, what="sae train")  # written by this trainer before folders carried a marker
        owned.check_removable(p)  # never replace a folder interp_af did not write
    keys = [SiteKey(cfg.site, L) for L in cfg.layers]
    acts = collect_activations(handle, prompts, keys, dt=dt, batch_size=batch_size, skip_first=cfg.skip_first)
    # an SAE records the name of the target it was trained on (its first alias), so the fit check passes
    # however the model is reached later (target name or folder path)
    aliases = tuple(getattr(handle, "aliases", ()) or ())
    model_name = cfg.model_name or (aliases[0] if aliases else str(getattr(handle, "name", "")))
    results: list[TrainedSAE] = []
    for key in keys:
        a = acts[key]
        perm = torch.randperm(a.shape[0], generator=torch.Generator().manual_seed(cfg.seed))
        n_hold = int(round(cfg.holdout * a.shape[0]))
        hold, train = a[perm[:n_hold]], a[perm[n_hold:]]
        sae = train_sae(train, key, cfg, model_name)
        stats = reconstruction_stats(sae, hold if n_hold else train)
        target = targets[key.layer]
        owned.ensure_dir(out_dir, what="sae train")
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=out_dir))
        except OSError as err:
            raise atomic.os_error(err, out_dir, "writing into") from err
        owned.adopt_dir(tmp, what="sae train")
        try:  # write beside, then swap in: no half-written SAE folder if anything fails
            sae.save_model(str(tmp))
            info = {"config": asdict(cfg), "site": str(key), "hook_name": site_to_hook(key), "model_name": model_name,
                    "n_prompts": len(prompts), "n_train_tokens": int(train.shape[0]),
                    "n_holdout_tokens": n_hold, "holdout": stats}
            atomic.write_json(tmp / "training.json", info)
            tmp.chmod(0o755)   # mkdtemp / safetensors made them private; shipped files must be readable
            for f in tmp.iterdir():
                f.chmod(0o644)
            owned.replace_owned(target, tmp, what="sae train")
        except OSError as err:  # sae-lens's own writes (save_model) on a full disk or a read-only folder
            raise atomic.os_error(err, target) from err
        finally:
            if tmp.exists():
                owned.remove_owned(tmp)
        results.append(TrainedSAE(key, target, int(train.shape[0]), n_hold, stats["fve"], stats["l0"],
                                  stats["dead_fraction"]))
    return results


def _trained_here(folder: Path) -> bool:
    """Does ``folder`` hold an SAE written by :func:`train_saes` (its ``training.json``, with this trainer's keys)?"""
    try:
        info = json.loads((folder / "training.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and {"config", "site", "hook_name", "n_train_tokens"} <= set(info)
