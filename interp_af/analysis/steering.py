"""Steering and directional ablation: does moving the representation along a direction move the gap?

A probe that separates free from paid says the information is *there*; it does not say the model *uses* it.
Steering tests use: add ``alpha * direction`` to one site (the residual stream by default) at chosen layers and
positions, and measure the compliance metric of each arm; or project the direction out (ablation). The answer
is a dose-response over ``alpha``, read against two default controls:

- ``flipped``: ``-direction`` (a real direction should push the other way);
- ``random<k>``: Gaussian directions with the same norm (a real direction should beat them by far; if random
  directions move the gap as much, the "effect" is just damage). They are compared as a *distribution*, not
  by their maximum: 20 by default, run only at the reported alpha (``random_alphas``) so that they cost one
  alpha's worth of passes each. :meth:`SteerResult.controls_summary` reads them
  (:mod:`interp_af.analysis.steering_controls`): median and 95th percentile of their closures, the real
  direction's percentile among them, the flipped direction's closure, and the noise floor in logits (how far
  norm-matched random directions move the steered arm's logit difference: a gap below it cannot be told from
  damage).

Directions: :func:`mean_difference` (mean over twins of arm a minus arm b activations at one site, layer and
named position; difference-of-means directions are the causally implicated ones, Marks & Tegmark), a probe's
direction, an SAE decoder row, or any vector of width ``d_model``. ``alpha = 1`` with a raw mean difference
adds exactly one average free-minus-paid difference. :func:`cue_embedding_cosine` says how much of a
direction is just the cue token's embedding difference (a direction that is ~1.0 cosine to it is the tag,
not a representation of "in training").

The *fraction of the gap closed* when steering arm b is the normalised effect of
:mod:`interp_af.analysis.effects`: ``(ld_b,steered - ld_b) / (ld_a - ld_b)`` on logit differences (ratio of
means over queries, query-bootstrap interval), so 1 = arm b now behaves like arm a. Compliance per arm is the
two-way probability ``sigmoid(logit diff)``. Everything runs through ``ModelHandle.forward`` interventions,
so it works on both backends; :func:`generate_steered` applies the same edit during greedy decoding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import torch
from torch import Tensor
from tqdm import tqdm

from interp_af.models.wrap import as_handle
from interp_af.analysis.effects import effect_interval, normalised_effect
from interp_af.analysis.probe_artifact import _jsonable
from interp_af.checks import finite_floats, nonneg_int, positive_int
from interp_af.errors import InterpAFError
from interp_af.models.metric import logit_diff
from interp_af.models.sites import SiteKey
from interp_af.setting.types import RenderedPrompt, Twin

from interp_af.analysis.vocab import STEER_OPS as OPS, STEER_SITES  # noqa: E402


def _check_layers(h: Any, layers: Sequence[int]) -> tuple[int, ...]:
    bad = [L for L in layers if not 0 <= L < h.n_layers]
    if bad or not layers:
        raise InterpAFError(f"layer(s) {list(bad) or 'none'} invalid; choose layers in 0..{h.n_layers - 1}")
    return tuple(int(L) for L in layers)


def check_direction(h: Any, direction: Tensor, what: str = "direction") -> Tensor:
    """A 1-D float tensor of width ``d_model`` on CPU, else a one-line error."""
    d = torch.as_tensor(direction).detach()
    if d.dim() != 1 or d.shape[0] != h.d_model:
        raise InterpAFError(f"{what} has shape {tuple(d.shape)} but the model's residual width is {h.d_model}; "
                            f"pass a vector of shape ({h.d_model},) (a direction from a probe/SAE of another model?)")
    if not torch.isfinite(d).all() or float(d.norm()) == 0.0:
        raise InterpAFError(f"{what} is zero or not finite; pass a non-zero direction")
    return d.float().cpu()


def _positions(p: RenderedPrompt, n: int, positions: str | Sequence[str] | Sequence[int]) -> list[int]:
    """Prompt positions to edit (the grammar of :mod:`interp_af.setting.positions`): "all", "from_cue" (cue to
    the end), "metric" (the last token of prompt + shared answer prefix, where the metric is read), named
    positions, offsets, windows or indices; ``n`` is the length of prompt + shared prefix."""
    from interp_af.setting.positions import indices

    return indices(positions, p.positions, n, metric=n - 1, what=f"prompt {p.query_id!r} ({p.arm})")


def _decision_tokens(h: Any, dt: Any) -> Any:
    if dt is not None:
        return dt
    from interp_af.models.metric import decision_tokens

    return decision_tokens(h.tokenizer)


@torch.no_grad()
def mean_difference(h: Any, twins: Sequence[Twin], *, layer: int, site: str = "resid_post",
                    position: str = "metric", batch_size: int = 16, dt: Any = None) -> Tensor:
    """Mean over twins of ``act(arm a) - act(arm b)`` at ``site``/``layer``/``position`` -> ``[d_model]``.

    ``position``: "metric" (default: where the decision metric is read, i.e. after the teacher-forced shared
    answer prefix), or a named position of the prompts ("decision" = last prompt token, "cue", "end_user", ...)."""
    if site not in STEER_SITES:
        raise InterpAFError(f"site {site!r} cannot give a mean-difference direction; use one of {STEER_SITES}")
    positive_int(batch_size, "batch_size")
    h = as_handle(h)
    _check_layers(h, [layer])
    if not twins:
        raise InterpAFError("no twins given; build them with interp_af.setting.twins.make_twins")
    shared = list(_decision_tokens(h, dt).shared)
    prompts = [p for tw in twins for p in (tw.a, tw.b)]
    ids = [list(p.input_ids) + shared for p in prompts]
    acts = []
    for lo in range(0, len(prompts), batch_size):
        chunk = list(range(lo, min(lo + batch_size, len(prompts))))
        pos = torch.tensor([[_positions(prompts[i], len(ids[i]), position)[0]] for i in chunk])
        out = h.forward(h.collate([ids[i] for i in chunk]), capture=[SiteKey(site, layer)],
                        capture_positions=pos, stop_at_layer=layer + 1)
        acts.append(out.acts[SiteKey(site, layer)][:, 0].float().cpu())
    a_b = torch.cat(acts).reshape(len(twins), 2, -1)
    return (a_b[:, 0] - a_b[:, 1]).mean(0)


def cue_embedding_cosine(h: Any, twins: Sequence[Twin], direction: Tensor) -> float:
    """Cosine of ``direction`` with the mean input-embedding difference (arm a minus arm b) of the cue tokens."""
    h = as_handle(h)
    W_E = h.embedding_matrix().float().cpu()
    diffs = []
    for tw in twins:
        pos = [i for i, (x, y) in enumerate(zip(tw.a.input_ids, tw.b.input_ids)) if x != y]
        if len(tw.a.input_ids) == len(tw.b.input_ids) and pos:
            diffs.append(W_E[[tw.a.input_ids[i] for i in pos]].mean(0) - W_E[[tw.b.input_ids[i] for i in pos]].mean(0))
    if not diffs:
        raise InterpAFError("no aligned twin to read the cue tokens from; the cue cosine needs same-length twins")
    e = torch.stack(diffs).mean(0)
    d = check_direction(h, direction)
    return float(torch.nn.functional.cosine_similarity(e, d, dim=0))


def reported_alpha(alphas: Sequence[float]) -> float:
    """The alpha results are reported at: 1.0 (one average arm difference) when swept, else the largest alpha
    (the study pipeline's rule)."""
    alphas = [float(a) for a in alphas]
    if not alphas:
        raise InterpAFError("no alphas given; pass the multipliers of the direction, e.g. -1 1")
    return 1.0 if 1.0 in alphas else max(alphas)


def control_directions(direction: Tensor, *, n_random: int = 20, flipped: bool = True,
                       seed: int = 0) -> dict[str, Tensor]:
    """``{"direction": d, "flipped": -d, "random0": r0, ...}`` with Gaussian random directions of ``d``'s norm."""
    nonneg_int(n_random, "n_random", "0 = no random controls")
    g = torch.Generator().manual_seed(seed)
    out = {"direction": direction}
    if flipped:
        out["flipped"] = -direction
    for k in range(n_random):
        r = torch.randn(direction.shape[0], generator=g)
        out[f"random{k}"] = r / r.norm() * direction.norm()
    return out


@dataclass(frozen=True)
class SteerResult:
    """``ld[control, alpha, arm, query]``: logit diff of each prompt (arm 0 = a, 1 = b) under each edit;
    ``base[arm, query]`` the unsteered logit diffs. ``alphas`` are ``(0.0,)``-free multipliers of each control
    direction (for ``op="project_out"`` a single pseudo-alpha 1.0). Random controls run only at
    ``random_alphas`` (default: ``report_alpha``); ``ld`` is NaN at the alphas where a control did not run."""

    op: str
    site: str
    layers: tuple[int, ...]
    positions: str
    controls: tuple[str, ...]
    alphas: tuple[float, ...]
    arms: tuple[str, str]
    query_ids: tuple[str, ...]
    ld: Tensor    # [C, A, 2, Q]
    base: Tensor  # [2, Q]
    direction_norm: float
    cue_cosine: float | None = None
    n_boot: int = 1000
    seed: int = 0
    info: dict[str, Any] = field(default_factory=dict)
    report_alpha: float | None = None
    random_alphas: tuple[float, ...] = ()

    def ran(self) -> Tensor:
        """``[C, A]`` bool: which (control, alpha) cells were run (random controls run at ``random_alphas``)."""
        return torch.isfinite(self.ld).all(-1).all(-1)

    def controls_summary(self, arm: int = 1, alpha: float | None = None) -> Any:
        """The controls read as a distribution at ``alpha`` (default ``report_alpha``) when steering ``arm``:
        a :class:`~interp_af.analysis.steering_controls.SteerControls`."""
        from interp_af.analysis.steering_controls import summarize_controls

        return summarize_controls(self, arm=arm, alpha=alpha)

    def closed(self, arm: int = 1) -> Tensor:
        """Fraction of the gap closed by steering ``arm`` (1 = arm b moved all the way to arm a) ``[C, A]``
        (NaN where a control did not run)."""
        other = 1 - arm
        C, A, _, Q = self.ld.shape
        patched = self.ld[:, :, arm, :].permute(2, 0, 1).reshape(Q, C * A)
        return normalised_effect(patched, self.base[arm], self.base[other]).reshape(C, A)

    def compliance(self) -> Tensor:
        """Mean two-way compliance probability ``[C, A, 2]``."""
        return torch.sigmoid(self.ld.double()).mean(-1)

    def to_frame(self) -> pd.DataFrame:
        """One row per (control, alpha, arm): compliance of that arm when it is steered, the gap with both arms
        steered (``gap``, vs ``base_gap`` unsteered), and the fraction of the gap closed with its interval."""
        C, A, _, Q = self.ld.shape
        comp = self.compliance()
        base_comp = torch.sigmoid(self.base.double()).mean(-1)
        ran = self.ran().reshape(-1)
        rows = []
        for arm in (0, 1):
            patched = self.ld[:, :, arm, :].permute(2, 0, 1).reshape(Q, C * A)
            eff = normalised_effect(patched, self.base[arm], self.base[1 - arm]).reshape(C, A)
            # intervals over the cells that ran (a NaN column would empty every bootstrap replicate)
            lo = torch.full((C * A,), float("nan"), dtype=torch.float64)
            hi = lo.clone()
            lo[ran], hi[ran] = effect_interval(patched[:, ran], self.base[arm], self.base[1 - arm],
                                               n_boot=self.n_boot, seed=self.seed)
            lo, hi = lo.reshape(C, A), hi.reshape(C, A)
            for c, name in enumerate(self.controls):
                for a, alpha in enumerate(self.alphas):
                    if not bool(ran[c * A + a]):
                        continue
                    rows.append(dict(control=name, alpha=alpha, arm=self.arms[arm], steered_arm=arm,
                                     mean_logit_diff=float(self.ld[c, a, arm].double().mean()),
                                     compliance=float(comp[c, a, arm]), base_compliance=float(base_comp[arm]),
                                     other_arm_compliance=float(base_comp[1 - arm]),
                                     gap=float(comp[c, a, 0] - comp[c, a, 1]),
                                     base_gap=float(base_comp[0] - base_comp[1]), closed=float(eff[c, a]),
                                     closed_lo=float(lo[c, a]), closed_hi=float(hi[c, a]), n_queries=Q))
        return pd.DataFrame(rows)

    def save(self, out_dir: str | Path) -> Path:
        from interp_af import atomic, owned

        out = owned.ensure_dir(out_dir, what="steering")
        meta: dict[str, Any] = {k: getattr(self, k) for k in (
            "op", "site", "layers", "positions", "controls", "alphas", "arms", "query_ids", "direction_norm",
            "cue_cosine", "n_boot", "seed", "info", "report_alpha", "random_alphas")}
        if self.report_alpha is not None and any(c.startswith("random") for c in self.controls):
            meta["controls_summary"] = self.controls_summary().to_dict()   # informative: recomputed on load
        text = json.dumps(_jsonable(meta), indent=2)
        atomic.write_safetensors(out / "steer.safetensors", {"ld": self.ld, "base": self.base})
        atomic.write_text(out / "steer.json", text)
        return out

    @classmethod
    def load(cls, out_dir: str | Path) -> "SteerResult":
        from safetensors.torch import load_file

        d = Path(out_dir)
        if not (d / "steer.json").exists():
            raise InterpAFError(f"{d} holds no steer.json; point at a directory written by SteerResult.save")
        meta = json.loads((d / "steer.json").read_text())
        meta.pop("controls_summary", None)
        meta["random_alphas"] = meta.get("random_alphas", ())
        for k in ("layers", "controls", "alphas", "arms", "query_ids", "random_alphas"):
            meta[k] = tuple(meta[k])
        t = load_file(str(d / "steer.safetensors"))
        return cls(**meta, ld=t["ld"], base=t["base"])


def _interventions(op: str, site: str, layers: Sequence[int], rows: list[int], pos: list[list[int]],
                   vecs: Tensor) -> list:
    """Interventions for ``rows`` (all of one prompt length): ``vecs[r]`` is that row's vector ``[d]``."""
    from interp_af.models.interventions import Intervention

    ivs = []
    by_len: dict[int, list[int]] = {}
    for r, p in zip(range(len(rows)), pos):
        by_len.setdefault(len(p), []).append(r)
    for _, idx in by_len.items():
        positions = torch.tensor([pos[i] for i in idx])
        for L in layers:
            if op == "add":
                ivs.append(Intervention(site=site, layer=L, op="add", positions=positions,
                                        value=vecs[idx][:, None, :], rows=torch.tensor([rows[i] for i in idx])))
            else:  # project_out takes one direction per intervention: one per row
                for i in idx:
                    ivs.append(Intervention(site=site, layer=L, op="project_out", positions=positions[idx.index(i)][None],
                                            value=vecs[i], rows=torch.tensor([rows[i]])))
    return ivs


@torch.no_grad()
def steer(h: Any, twins: Sequence[Twin], direction: Tensor, *, layers: Sequence[int], alphas: Sequence[float] = (
          -2.0, -1.0, -0.5, 0.5, 1.0, 2.0), op: str = "add", site: str = "resid_post",
          positions: str | Sequence[str] | Sequence[int] = "all", n_random: int = 20, flipped: bool = True,
          random_alphas: Sequence[float] | str | None = None, dt: Any = None, batch_size: int = 32,
          n_boot: int = 1000, seed: int = 0, progress: bool = True) -> SteerResult:
    """Steer (``op="add"``: + alpha x direction) or ablate (``op="project_out"``) at ``layers`` and
    ``positions`` on both arms of every twin, with flipped and norm-matched random controls.

    The direction and its flip run at every alpha; the ``n_random`` random directions only at
    ``random_alphas``: None = the reported alpha (:func:`reported_alpha`: 1.0 when swept), ``"all"`` = every
    alpha, or a list. Read the controls with :meth:`SteerResult.controls_summary`."""
    if op not in OPS:
        raise InterpAFError(f"op {op!r} is unknown; use 'add' or 'project_out'")
    if site not in STEER_SITES:
        raise InterpAFError(f"site {site!r} cannot be steered along a d_model direction; use one of {STEER_SITES}")
    if not twins:
        raise InterpAFError("no twins given; build them with interp_af.setting.twins.make_twins")
    positive_int(batch_size, "batch_size")
    nonneg_int(n_boot, "n_boot", "0 = no intervals")
    nonneg_int(n_random, "n_random", "0 = no random controls")
    h = as_handle(h)
    layers_t = _check_layers(h, layers)
    d = check_direction(h, direction)
    dt = _decision_tokens(h, dt)
    ctrl = control_directions(d, n_random=n_random, flipped=flipped and op == "add", seed=seed)
    alphas_t = finite_floats(alphas, "alphas", nonempty=False) if op == "add" else (1.0,)
    if op == "add" and not alphas_t:
        raise InterpAFError("alphas is empty; give the multipliers of the direction to add, e.g. -2 -1 1 2")
    report = reported_alpha(alphas_t)
    if random_alphas is None:
        rand_t: tuple[float, ...] = (report,)
    elif isinstance(random_alphas, str):
        if random_alphas != "all":
            raise InterpAFError(f"random_alphas={random_alphas!r}; pass None (the reported alpha), 'all' or a list")
        rand_t = alphas_t
    else:
        rand_t = tuple(float(a) for a in random_alphas)
        missing = [a for a in rand_t if a not in alphas_t]
        if missing:
            raise InterpAFError(f"random_alphas {missing} are not among alphas {list(alphas_t)}; pick from those")
    prompts = [p for tw in twins for p in (tw.a, tw.b)]
    ids = [list(p.input_ids) + list(dt.shared) for p in prompts]
    pos = [_positions(p, len(i), positions) for p, i in zip(prompts, ids)]
    base = torch.zeros(len(prompts), dtype=torch.float64)
    for lo in range(0, len(ids), batch_size):
        out = h.forward(h.collate(ids[lo:lo + batch_size]))
        base[lo:lo + batch_size] = logit_diff(out.logits, dt).double().cpu()
    names = tuple(ctrl)
    run_at = {c: [a for a, al in enumerate(alphas_t) if not names[c].startswith("random") or al in rand_t]
              for c in range(len(names))}
    jobs = [(c, a, p) for c in range(len(ctrl)) for a in run_at[c] for p in range(len(prompts))]
    vec_of = torch.stack(list(ctrl.values()))  # [C, d]
    ld = torch.full((len(ctrl), len(alphas_t), len(prompts)), float("nan"), dtype=torch.float64)
    for lo in tqdm(range(0, len(jobs), batch_size), desc="steer", disable=not progress or len(jobs) <= batch_size):
        chunk = jobs[lo:lo + batch_size]
        vecs = torch.stack([vec_of[c] * alphas_t[a] for c, a, _ in chunk]).to(h.dtype)
        ivs = _interventions(op, site, layers_t, list(range(len(chunk))), [pos[p] for _, _, p in chunk], vecs)
        out = h.forward(h.collate([ids[p] for _, _, p in chunk]), interventions=ivs)
        vals = logit_diff(out.logits, dt).double().cpu()
        for (c, a, p), v in zip(chunk, vals.tolist()):
            ld[c, a, p] = v
    Q = len(twins)
    ld_CA2Q = ld.reshape(len(ctrl), len(alphas_t), Q, 2).permute(0, 1, 3, 2).contiguous()
    base_2Q = base.reshape(Q, 2).T.contiguous()
    try:
        cos = cue_embedding_cosine(h, twins, d)
    except (InterpAFError, NotImplementedError):
        cos = None
    pos_desc = positions if isinstance(positions, str) else ",".join(str(p) for p in positions)
    return SteerResult(op=op, site=site, layers=layers_t, positions=pos_desc, controls=tuple(ctrl), alphas=alphas_t,
                       arms=(twins[0].a.arm or "a", twins[0].b.arm or "b"), query_ids=tuple(t.query_id for t in twins),
                       ld=ld_CA2Q, base=base_2Q, direction_norm=float(d.norm()), cue_cosine=cos, n_boot=n_boot,
                       seed=seed, info={"rows": len(jobs) + len(prompts)}, report_alpha=report,
                       random_alphas=rand_t if n_random else ())


@torch.no_grad()
def generate_steered(h: Any, prompts: Sequence[RenderedPrompt], direction: Tensor | None, *, layers: Sequence[int],
                     alpha: float = 1.0, op: str = "add", site: str = "resid_post",
                     positions: str | Sequence[str] | Sequence[int] = "all",
                     max_new_tokens: int = 8, batch_size: int = 16) -> list[str]:
    """Greedy decoding of ``max_new_tokens`` with the edit applied at every step (with ``positions="all"``
    also at the generated tokens). ``direction=None`` decodes unsteered. Returns the decoded continuations."""
    positive_int(max_new_tokens, "max_new_tokens")
    positive_int(batch_size, "batch_size")
    finite_floats([alpha], "alpha")
    h = as_handle(h)
    layers_t = _check_layers(h, layers)
    d = None if direction is None else check_direction(h, direction) * (alpha if op == "add" else 1.0)
    texts: list[str] = []
    for lo in range(0, len(prompts), batch_size):
        chunk = list(prompts[lo:lo + batch_size])
        seqs = [list(p.input_ids) for p in chunk]
        for _ in range(max_new_tokens):
            ivs = []
            if d is not None:
                pos = [_positions(p, len(s), positions) if positions != "all" else list(range(len(s)))
                       for p, s in zip(chunk, seqs)]
                ivs = _interventions(op, site, layers_t, list(range(len(chunk))), pos,
                                     d[None].expand(len(chunk), -1).to(h.dtype))
            out = h.forward(h.collate(seqs), interventions=ivs)
            nxt = out.logits[:, -1].argmax(-1).tolist()
            for s, t in zip(seqs, nxt):
                s.append(int(t))
        texts += [h.tokenizer.decode(s[len(p.input_ids):]) for s, p in zip(seqs, chunk)]
    return texts
