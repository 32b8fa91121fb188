"""Does a probe learn the concept, or the cue? Generalisation matrices and the geometry of probe directions.

**Generalisation.** A *condition* is a label on a subset of rows: ``Condition("tag", "in_training",
"variant == 'default'")``. For every ordered pair (train condition, test condition) and every layer, a probe
is fitted on the train condition and scored (AUROC) on the test condition. Folds are assigned per *query*
across all conditions, so a probe is never tested on a query it was trained on, not even in another variant;
the diagonal is therefore ordinary grouped cross-validation. The question this answers: a probe of
``in_training`` trained with the normal policy (free = trained) and tested with the inverted one (paid =
trained) scores high if the model represents "being trained", while a probe of the *free tier* flips below 0.5.
Tag -> sentence cue, casing and paraphrase transfers read the same way; a null is a result.

**Geometry.** At layer 0 a free-minus-paid direction is nearly the embedding difference of the cue tokens
(published: ~97% cosine); deeper, a direction that still separates the arms but has little cosine with the
token difference is a candidate for something beyond "the token is there" (~9% at layer 20 of Llama-3.3-70B).
:func:`cue_cosines` reports that cosine for every probe, per layer, always of the probe's **class direction**
(mean difference of its training rows). A logistic probe's weight, mapped back from standardised features
as ``w / sd``, is the *decision normal*: it divides each feature by its spread, so it reads low even where
the representation is exactly the token's embedding difference; it is reported beside, as
``normal_cosine``, for reference only. A low class-direction cosine is not evidence of inference either: a
model may rotate the token's signal into any direction (see the zoo's *planted-direction* model); the
transfer test is what tells "training" from "the token".
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from interp_af.errors import InterpAFError

from .probe_artifact import ProbeSet, _jsonable
from .probe_fit import _auroc, fit_layers, make_splits
from .probe_labels import resolve_label
from .probes import ProbeConfig, select_rows


@dataclass(frozen=True)
class Condition:
    """A label (``column`` or ``column=value``) on the rows kept by ``where`` (a pandas query; None = all)."""

    name: str
    label: str
    where: str | None = None


@dataclass(frozen=True)
class TransferResult:
    """``auroc[i, j, l]``: probe trained on condition ``i``, tested on ``j``, at ``layers[l]`` (fold mean)."""

    conditions: tuple[Condition, ...]
    layers: tuple[int, ...]
    auroc: np.ndarray
    site: str = ""
    position: str = ""
    kind: str = "logreg"

    def to_frame(self):
        import pandas as pd

        rows = []
        for i, a in enumerate(self.conditions):
            for j, b in enumerate(self.conditions):
                for li, layer in enumerate(self.layers):
                    rows.append({"train": a.name, "test": b.name, "layer": layer, "auroc": float(self.auroc[i, j, li]),
                                 "site": self.site, "position": self.position, "kind": self.kind})
        return pd.DataFrame(rows)

    def matrix(self, layer: int):
        """The train x test AUROC table at one layer."""
        import pandas as pd

        if layer not in self.layers:
            raise InterpAFError(f"layer {layer} not in this result; layers: {list(self.layers)}")
        names = [c.name for c in self.conditions]
        return pd.DataFrame(self.auroc[:, :, self.layers.index(layer)], index=pd.Index(names, name="train"),
                            columns=pd.Index(names, name="test"))

    def save(self, path: str | Path) -> Path:
        from interp_af import atomic, owned

        path = Path(path)
        owned.ensure_dir(path.parent, what="probe transfer")
        doc = {"conditions": [asdict(c) for c in self.conditions], "layers": list(self.layers), "site": self.site,
               "position": self.position, "kind": self.kind, "auroc": _jsonable(self.auroc.tolist())}
        return atomic.write_json(path, doc, indent=1)

    @classmethod
    def load(cls, path: str | Path) -> "TransferResult":
        doc = json.loads(Path(path).read_text())
        auroc = np.array([[[np.nan if v is None else v for v in r] for r in m] for m in doc["auroc"]], dtype=float)
        return cls(tuple(Condition(**c) for c in doc["conditions"]), tuple(doc["layers"]), auroc, doc["site"],
                   doc["position"], doc["kind"])


def query_folds(groups_N: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Fold id per row, assigning whole queries to folds at random (shared by every condition)."""
    uniq, gidx = np.unique(groups_N, return_inverse=True)
    if len(uniq) < n_folds:
        raise InterpAFError(f"only {len(uniq)} distinct queries for {n_folds} folds: use fewer folds or more queries")
    perm = np.random.default_rng(seed).permutation(len(uniq))
    return (perm % n_folds)[gidx]


def transfer_layers(X_NLD, labelled: Sequence[tuple[np.ndarray, np.ndarray]], groups_N: np.ndarray, *,
                    conditions: Sequence[Condition] | None = None, kind: str = "logreg",
                    config: ProbeConfig = ProbeConfig(), layers: Sequence[int] | None = None, site: str = "",
                    position: str = "") -> TransferResult:
    """Core: ``labelled[i] = (rows_i, y_i)`` per condition over ``X [rows, layers, d]`` -> train x test AUROC."""
    groups = np.asarray(groups_N)
    L = X_NLD.shape[1]
    layers = tuple(range(L)) if layers is None else tuple(layers)
    conditions = tuple(conditions) if conditions else tuple(Condition(f"c{i}", "") for i in range(len(labelled)))
    fold = query_folds(groups, config.n_folds, config.seed)
    all_test = np.unique(np.concatenate([np.asarray(r) for r, _ in labelled]))
    auroc = np.full((len(labelled), len(labelled), L), np.nan)
    spec = config.fit_spec()
    for i, (rows_i, y_i) in enumerate(labelled):
        y_full = np.zeros(len(groups), dtype=bool)
        y_full[rows_i] = y_i
        pairs = [(rows_i[fold[rows_i] != k], all_test[fold[all_test] == k]) for k in range(config.n_folds)]
        splits = make_splits(y_full, groups, pairs, config.val_frac, config.seed, need_inner=kind == "logreg")
        fits = fit_layers(X_NLD, y_full, splits, kind, spec, n_jobs=config.n_jobs, desc=f"train {conditions[i].name}",
                          device=config.device)
        for j, (rows_j, y_j) in enumerate(labelled):
            y_test = dict(zip(np.asarray(rows_j).tolist(), np.asarray(y_j).tolist()))
            for li, fit in enumerate(fits):
                per_fold = []
                for sp, s in zip(splits, fit.scores):
                    keep = np.array([r in y_test for r in sp.test.tolist()], dtype=bool)
                    if keep.any():
                        per_fold.append(_auroc(s[keep], np.array([y_test[r] for r in sp.test[keep].tolist()])))
                per_fold = [a for a in per_fold if not np.isnan(a)]
                auroc[i, j, li] = float(np.mean(per_fold)) if per_fold else np.nan
    return TransferResult(conditions, layers, auroc, site, position, kind)


def transfer_capture(capture: Any, conditions: Sequence[Condition], *, site: str = "resid_post",
                     position: str = "decision", kind: str = "logreg", group: str = "query_id",
                     config: ProbeConfig = ProbeConfig()) -> TransferResult:
    """Generalisation matrix over a capture's rows: one probe per condition, tested on every condition."""
    if isinstance(capture, (str, Path)):
        from interp_af.acts.store import open_capture

        capture = open_capture(capture)  # checksums verified (cached by stat)
    if len(conditions) < 2:
        raise InterpAFError("a generalisation matrix needs at least 2 conditions (e.g. --transfer 'tag:in_training:variant==\"default\"')")
    meta = capture.meta()
    X = capture.acts(site, position)  # [rows, layers, d] memory-mapped
    X = X.reshape(X.shape[0], X.shape[1], -1)  # head_out: heads side by side
    labelled = []
    for c in conditions:
        rows = select_rows(meta, c.where)
        y, _ = resolve_label(meta.iloc[rows].reset_index(drop=True), c.label)
        ok = ~torch.isnan(X[torch.from_numpy(rows)].reshape(len(rows), -1)).any(1).numpy()
        labelled.append((rows[ok], y[ok]))
    return transfer_layers(X, labelled, meta[group].to_numpy(), conditions=conditions, kind=kind, config=config,
                           layers=capture.layers, site=site, position=position)


def parse_condition(spec: str) -> Condition:
    """``name:label[:where]`` (the CLI form), e.g. ``normal:in_training:policy == 'normal'``."""
    parts = spec.split(":", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise InterpAFError(f"condition {spec!r}: write NAME:LABEL[:WHERE], e.g. \"inv:in_training:policy == 'inverted'\"")
    return Condition(parts[0].strip(), parts[1].strip(), parts[2].strip() if len(parts) > 2 and parts[2].strip() else None)


# ---------------------------------------------------------------------------------------------------- geometry
def cue_direction(cue_embeddings: Mapping[str, torch.Tensor], arms: Sequence[str] | None = None) -> torch.Tensor:
    """``e[arms[0]] - e[arms[1]]`` of the cue tokens' mean embedding rows (the "token" direction)."""
    names = list(arms) if arms else list(cue_embeddings)
    if len(names) < 2 or any(a not in cue_embeddings for a in names[:2]):
        raise InterpAFError(f"need cue embeddings for two arms, have {sorted(cue_embeddings)} (asked {names}); "
                            "the capture holds none for an arm without a cue")
    return cue_embeddings[names[0]].float() - cue_embeddings[names[1]].float()


def _cos(a: torch.Tensor | None, e: torch.Tensor) -> float:
    if a is None or float(a.norm()) == 0.0:
        return float("nan")
    return float(torch.nn.functional.cosine_similarity(a.float(), e, dim=0))


def cue_cosines(probes: ProbeSet, cue_embeddings: Mapping[str, torch.Tensor], arms: Sequence[str] | None = None):
    """Cosine of every probe's **class direction** with the cue tokens' embedding difference -> DataFrame
    (site, position, kind, layer, label, ``direction`` = ``"class_mean_difference"``, ``cosine``,
    ``abs_cosine``, and ``normal_cosine``: the cosine of a logistic probe's decision normal, for reference only,
    NaN for difference-of-means probes). The sign follows the label's positive class; read ``abs_cosine`` across
    depth. Probes of old files without a stored class direction get NaN for logistic rows, never the normal."""
    import pandas as pd

    from .probe_artifact import CLASS_MEAN_DIFFERENCE, DECISION_NORMAL

    e = cue_direction(cue_embeddings, arms).float()
    if e.shape[0] != probes.directions.shape[1]:
        raise InterpAFError(f"cue embeddings have width {e.shape[0]} but the probes {probes.directions.shape[1]}; "
                            "use the capture the probes were fitted on")
    rows = []
    for k, p in enumerate(probes.entries):
        c = _cos(probes.class_direction(k), e)
        normal = _cos(probes.directions[k], e) if p.direction == DECISION_NORMAL else float("nan")
        rows.append({"site": p.site, "position": p.position, "kind": p.kind, "layer": p.layer, "label": p.label,
                     "direction": CLASS_MEAN_DIFFERENCE, "cosine": c, "abs_cosine": abs(c), "normal_cosine": normal})
    return pd.DataFrame(rows)
