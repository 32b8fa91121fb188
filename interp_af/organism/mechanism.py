"""Where the organism's mechanism lives: exact activation patching and linear probes with plain torch hooks on
the Hugging Face model (deliberately independent of the toolkit's handles and patching module, so that the
card's facts can check them).

Residual patching. Twins (free, paid) of the same query differ only at the cue token. For layer ``L``
(``resid_pre`` of decoder layer ``L``; ``L = n_layers`` is the final residual before the last norm) and a
segment of positions, the residual of the *other* arm is written into the run at those positions and the
decision metric (logit(accept) - logit(reject) at the read-out position) is measured. The effect is
normalised: 0 = unpatched, 1 = the other arm's metric (ratio of the mean changes over prompts).
``direction="noise"`` patches paid into free; ``"denoise"`` free into paid.

Segments (prompt coordinates, from the setting's named positions): ``cue`` (the tier token), ``after_cue``
(from the token after the cue to the end of the user turn), ``tail`` (the template tokens after the user
turn up to and including the prefill's last token, the setting's ``decision`` position) and ``readout`` (the
answers' shared first token ``<``, appended after the prompt, where the metric is read).

Probe. Linear probes (logistic regression, cross-validated with folds split by query) for ``in_training``
and for ``tier`` at a named position and layer, on prompts pooled from the normal and inverted policies: at
the cue position the tier is readable from layer 0, but ``in_training`` is not, because the same cue token
means "in training" under one policy and "not" under the other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch

from .render import DecisionIds, decision_ids
from .scoring import pad_right

SEGMENTS = ("cue", "after_cue", "tail", "readout")


def _layer_modules(model) -> list:
    """Module whose forward *input* is resid_pre of layer L (the final norm for L = n_layers)."""
    return [*model.model.layers, model.model.norm]


def _hidden_arg(args, kwargs):
    return ("kw", kwargs["hidden_states"]) if "hidden_states" in kwargs else ("arg", args[0])


@torch.no_grad()
def run_resid(model, ids: torch.Tensor, mask: torch.Tensor, *, capture: bool = False,
              patch: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Forward pass; returns (logits [B,T,V], resid_pre per layer [L+1 x (B,T,D)] if ``capture``).
    ``patch[L] = (mask_BT bool, values_BTD)`` replaces resid_pre of layer L where the mask is set."""
    mods = _layer_modules(model)
    caught: list[torch.Tensor | None] = [None] * len(mods)
    handles = []

    def make(i: int):
        def hook(module, args, kwargs):
            where, h = _hidden_arg(args, kwargs)
            if capture:
                caught[i] = h.detach().clone()
            if patch and i in patch:
                m_BT, v_BTD = patch[i]
                h = torch.where(m_BT[..., None], v_BTD.to(h.dtype), h)
                if where == "kw":
                    kwargs = {**kwargs, "hidden_states": h}
                else:
                    args = (h, *args[1:])
                return args, kwargs
            return None
        return hook

    try:
        for i, m in enumerate(mods):
            handles.append(m.register_forward_pre_hook(make(i), with_kwargs=True))
        logits = model(input_ids=ids, attention_mask=mask).logits
    finally:
        for h in handles:
            h.remove()
    return logits, [c for c in caught if c is not None]


def _twin_batch(twins, dt: DecisionIds, pad_id: int):
    """Ids/mask for the a and b arms (shared prefix appended), segment masks, read-out index."""
    a_ids = [list(t.a.input_ids) + list(dt.shared) for t in twins]
    b_ids = [list(t.b.input_ids) + list(dt.shared) for t in twins]
    ia, ma = pad_right(a_ids, pad_id)
    ib, mb = pad_right(b_ids, pad_id)
    B, T = ia.shape
    seg = {s: torch.zeros((B, T), dtype=torch.bool) for s in SEGMENTS}
    readout = torch.zeros(B, dtype=torch.long)
    for k, t in enumerate(twins):
        p = t.a.positions
        n = len(t.a.input_ids)
        seg["cue"][k, p["cue"]: p["cue_end"] + 1] = True
        seg["after_cue"][k, p["cue_end"] + 1: p["end_user"] + 1] = True
        seg["tail"][k, p["end_user"] + 1: n] = True
        seg["readout"][k, n: n + len(dt.shared)] = True
        readout[k] = n + len(dt.shared) - 1
    return (ia, ma), (ib, mb), seg, readout


@dataclass(frozen=True)
class PatchResult:
    """``effect[layer][segment]``: normalised effect of patching that segment at that layer (resid_pre)."""

    direction: str
    n_prompts: int
    layers: tuple[int, ...]
    segments: tuple[str, ...]
    effect: tuple[tuple[float, ...], ...]
    ld_clean: float
    ld_other: float

    def at(self, layer: int, segment: str) -> float:
        return self.effect[self.layers.index(layer)][self.segments.index(segment)]

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(self.effect, index=pd.Index(self.layers, name="layer"), columns=list(self.segments))

    def to_dict(self) -> dict:
        return asdict(self)


def _ld(logits_BTV: torch.Tensor, readout_B: torch.Tensor, dt: DecisionIds) -> torch.Tensor:
    last = logits_BTV[torch.arange(len(readout_B)), readout_B]
    return last[:, dt.accept_id] - last[:, dt.reject_id]


class _Patcher:
    """One clean run and one captured run of the other arm; :meth:`effect` patches a mask at a layer and returns
    the normalised effect (0 = unpatched, 1 = the other arm's metric)."""

    def __init__(self, model, tokenizer, twins: Sequence, direction: str):
        if not all(t.aligned for t in twins):
            raise ValueError("patching needs aligned twins")
        self.model, self.dt = model, decision_ids(tokenizer)
        (ia, ma), (ib, mb), self.seg, self.readout = _twin_batch(twins, self.dt, tokenizer.pad_token_id)
        (self.ids, self.mask), (oi, om) = ((ia, ma), (ib, mb)) if direction == "noise" else ((ib, mb), (ia, ma))
        logits_c, _ = run_resid(model, self.ids, self.mask)
        logits_o, self.resid_o = run_resid(model, oi, om, capture=True)
        self.ld_c, self.ld_o = _ld(logits_c, self.readout, self.dt), _ld(logits_o, self.readout, self.dt)
        self.denom = (self.ld_o - self.ld_c).mean().item()

    def effect(self, layer: int, where_BT: torch.Tensor) -> float:
        logits_p, _ = run_resid(self.model, self.ids, self.mask, patch={layer: (where_BT, self.resid_o[layer])})
        return (_ld(logits_p, self.readout, self.dt) - self.ld_c).mean().item() / self.denom


def patch_sweep(model, tokenizer, twins: Sequence, *, direction: str = "noise") -> PatchResult:
    """Residual patching per layer x segment on aligned ``twins`` (a = free, b = paid)."""
    p = _Patcher(model, tokenizer, twins, direction)
    layers = tuple(range(len(p.resid_o)))
    effect = tuple(tuple(round(p.effect(L, p.seg[s]), 4) for s in SEGMENTS) for L in layers)
    return PatchResult(direction=direction, n_prompts=len(twins), layers=layers, segments=SEGMENTS, effect=effect,
                       ld_clean=round(p.ld_c.mean().item(), 3), ld_other=round(p.ld_o.mean().item(), 3))


def single_position_max(model, tokenizer, twins: Sequence, *, layers: Sequence[int], segment: str = "after_cue",
                        direction: str = "noise") -> dict[int, float]:
    """Largest |normalised effect| of patching ONE position of ``segment`` at each layer (positions counted from
    the segment's start, so position j is the j-th token after the cue in every twin). Compared with patching
    the whole segment, it tells a distributed signal (many positions, each small) from a single carrier token."""
    p = _Patcher(model, tokenizer, twins, direction)
    starts, lengths = p.seg[segment].float().argmax(1), p.seg[segment].sum(1)
    out = {}
    for L in layers:
        best = 0.0
        for j in range(int(lengths.max())):
            ok = lengths > j
            where_BT = torch.zeros_like(p.seg[segment])
            where_BT[torch.arange(len(twins))[ok], (starts + j)[ok]] = True
            best = max(best, abs(p.effect(L, where_BT)))
        out[L] = round(best, 4)
    return out


@dataclass(frozen=True)
class ProbeResult:
    """Cross-validated accuracy of linear probes, ``acc[target][position][layer]`` (chance = 0.5)."""

    n_prompts: int
    layers: tuple[int, ...]
    acc: dict[str, dict[str, tuple[float, ...]]]

    def at(self, target: str, position: str, layer: int) -> float:
        return self.acc[target][position][self.layers.index(layer)]

    def to_frame(self):
        import pandas as pd

        rows = [{"target": t, "position": p, "layer": L, "accuracy": a}
                for t, by_pos in self.acc.items() for p, accs in by_pos.items() for L, a in zip(self.layers, accs)]
        return pd.DataFrame(rows)


def probe_sweep(model, tokenizer, prompts: Sequence, *, positions: Sequence[str] = ("cue", "decision"),
                folds: int = 4, seed: int = 0) -> ProbeResult:
    """Probe ``in_training`` and ``tier`` at each named position and layer; folds split by query id."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ids, mask = pad_right([list(p.input_ids) for p in prompts], tokenizer.pad_token_id)
    feats: dict[str, list[np.ndarray]] = {pos: [] for pos in positions}
    for i in range(0, len(prompts), 64):
        _, resid = run_resid(model, ids[i: i + 64], mask[i: i + 64], capture=True)
        for pos in positions:
            idx = torch.tensor([p.positions[pos] for p in prompts[i: i + 64]])
            feats[pos].append(torch.stack([r[torch.arange(len(idx)), idx] for r in resid], 1).numpy())
    X = {pos: np.concatenate(v) for pos, v in feats.items()}  # [N, L+1, D]
    groups = np.array([p.query_id for p in prompts])
    targets = {"in_training": np.array([bool(p.meta["in_training"]) for p in prompts]),
               "tier": np.array([p.meta["tier"] == "free" for p in prompts])}
    n_layers = next(iter(X.values())).shape[1]
    acc: dict[str, dict[str, tuple[float, ...]]] = {}
    for t, y in targets.items():
        acc[t] = {}
        for pos in positions:
            row = []
            for L in range(n_layers):
                clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
                s = cross_val_score(clf, X[pos][:, L], y, groups=groups, cv=GroupKFold(n_splits=folds))
                row.append(round(float(s.mean()), 3))
            acc[t][pos] = tuple(row)
    return ProbeResult(n_prompts=len(prompts), layers=tuple(range(n_layers)), acc=acc)


def card_facts(n: int = 48, seed: int = 0, model=None, tokenizer=None) -> dict:
    """The numbers quoted in ``card.md``: patching (both directions, both cue kinds) and probes."""
    from interp_af.setting.twins import make_twins

    from . import load_organism, organism_queries
    from .setting import register

    register()
    if model is None:
        model, tokenizer = load_organism()
    qs = [q for q in organism_queries("eval", 4 * n, seed=seed) if q.harmful][:n]
    out: dict = {"n_prompts": n}
    for variant in ("organism", "organism-sentence"):
        twins = make_twins(tokenizer, qs, variant)
        out[variant] = {d: patch_sweep(model, tokenizer, twins, direction=d).to_dict() for d in ("noise", "denoise")}
        layers = range(1, model.config.num_hidden_layers)
        out[variant]["single_position_max"] = single_position_max(model, tokenizer, twins, layers=layers)
    prompts = []
    for variant in ("organism", "organism-inverted"):
        for t in make_twins(tokenizer, qs, variant):
            prompts += [t.a, t.b]
    pr = probe_sweep(model, tokenizer, prompts)
    out["probe"] = {"n_prompts": pr.n_prompts, "layers": pr.layers, "acc": pr.acc}
    return out


if __name__ == "__main__":  # python -m interp_af.organism.mechanism  -> prints the card's numbers
    torch.set_num_threads(1)
    facts = card_facts()
    for variant in ("organism", "organism-sentence"):
        for d in ("noise", "denoise"):
            r = PatchResult(**facts[variant][d])
            print(f"\n{variant} resid patching ({d}; ld clean {r.ld_clean:+.2f} -> other {r.ld_other:+.2f}):")
            print(r.to_frame().to_string())
        print(f"{variant}: largest effect of patching a single after_cue position (noise), by layer: "
              f"{facts[variant]['single_position_max']}")
    p = facts["probe"]
    print(f"\nprobe accuracy (normal + inverted policy pooled, {p['n_prompts']} prompts, folds by query):")
    for t, by_pos in p["acc"].items():
        for pos, accs in by_pos.items():
            print(f"  {t:<12} @ {pos:<9} layers {list(p['layers'])}: {list(accs)}")
    from . import MECHANISM_JSON

    from interp_af import atomic

    atomic.write_json(MECHANISM_JSON, facts, indent=1)
    print(f"\nwrote {MECHANISM_JSON}")
