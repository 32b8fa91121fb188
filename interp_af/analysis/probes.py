"""Linear probes on captured activations: is "being trained" represented, beyond the cue token?

A probe that separates free-tier from paid-tier prompts is trivial: the tier tag is *in the prompt*. The useful
questions are narrower, and this module is built so that they are the easy ones to ask:

- **which label**: the arm, ``in_training`` (trained arm *and* training information present), the model's
  own decision (``complied``), or any metadata column (:mod:`.probe_labels`);
- **where**: every captured layer and named position in one call (cue token, end of system prompt, end of
  user turn, decision), so the curve shows where the information lives and where it travels;
- **held out by query**: k-fold splits by query (never by pair or row), stratified by label; C is chosen on
  a validation split of the training queries; AUROC and accuracy get a query-clustered bootstrap interval;
- **controls by default**: random labels and a same-label control, run through the *same* pipeline; any
  control above 0.6 AUROC (whose interval also clears 0.5, so that small-sample noise is not called a leak;
  without intervals the point estimate decides) is flagged as leakage in :attr:`ProbeResult.leakage`;
- **two probe kinds**: logistic regression (the better classifier) and difference of means (the better
  causal direction, the one to steer with);
- and, in :mod:`.probe_transfer`, generalisation across cues/variants and the cosine of every direction
  with the cue tokens' embedding difference.

Entry points: :func:`probe_layers` on plain arrays ``X [rows, layers, d]`` + labels + groups, and
:func:`probe_capture` on a capture store. Both return a :class:`ProbeResult` (scores table + fitted probes).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from interp_af.errors import InterpAFError

from .probe_artifact import DIRECTION_OF_KIND, ProbeEntry, ProbeSet, _jsonable
from .probe_fit import FitSpec, LayerFit, Split, fit_layers, make_folds, make_splits
from .probe_labels import permute_within_groups, resolve_label, same_label_control
from .probe_stats import fold_scores

from interp_af.analysis.vocab import CONTROLS, KINDS  # noqa: E402


@dataclass(frozen=True)
class ProbeConfig:
    """Everything a probe sweep depends on (saved beside its results)."""

    kinds: tuple[str, ...] = KINDS                   # probe kinds to fit: "logreg", "diffmean"
    n_folds: int = 5                                 # k of the grouped k-fold
    Cs: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0)   # L2 grid for logistic regression (sklearn's C)
    val_frac: float = 0.25                           # share of training queries held out to choose C
    standardize: bool = True                         # z-score features (fitted on training rows) before logreg
    n_boot: int = 500                                # cluster-bootstrap replicates for intervals (0 = none)
    controls: tuple[str, ...] = CONTROLS             # "random", "same_label"; () to skip
    same_label_repeats: int = 3                      # pseudo-label draws averaged in the same-label control
    leakage_threshold: float = 0.6                   # a control above this AUROC (interval clear of 0.5) is flagged
    seed: int = 0
    n_jobs: int = 1                                  # processes over layers for logreg (-1 = all cores)
    device: str = "cpu"                              # "cpu": scikit-learn; "cuda"/"torch-cpu": batched torch Newton
    max_iter: int = 1000
    fit_final: bool = True                           # also fit each probe on all rows (the saved artifact)

    def fit_spec(self) -> FitSpec:
        return FitSpec(Cs=tuple(self.Cs), standardize=self.standardize, max_iter=self.max_iter,
                       val_frac=self.val_frac, seed=self.seed)

    def __post_init__(self) -> None:
        bad = [k for k in self.kinds if k not in KINDS]
        if bad or not self.kinds:
            raise InterpAFError(f"probe kinds {list(self.kinds)}: choose from {', '.join(KINDS)}")
        bad = [c for c in self.controls if c not in CONTROLS]
        if bad:
            raise InterpAFError(f"unknown control(s) {bad}: choose from {', '.join(CONTROLS)}")
        if self.n_folds < 2:
            raise InterpAFError(f"n_folds={self.n_folds}: use at least 2 folds")
        from interp_af.checks import fraction, int_at_least, nonneg_int, positive_float, positive_int

        int_at_least(self.n_folds, "n_folds", 2, "folds of the grouped cross-validation")
        nonneg_int(self.n_boot, "n_boot", "0 = no intervals")
        positive_int(self.same_label_repeats, "same_label_repeats")
        positive_int(self.max_iter, "max_iter")
        fraction(self.val_frac, "val_frac")
        fraction(self.leakage_threshold, "leakage_threshold")
        if not self.Cs:
            raise InterpAFError("Cs is empty; give the regularisation grid of the logistic probe, e.g. (0.01, 0.1, 1)")
        for c in self.Cs:
            positive_float(c, "Cs")
        if isinstance(self.n_jobs, bool) or not isinstance(self.n_jobs, int) or self.n_jobs == 0 or self.n_jobs < -1:
            raise InterpAFError(f"n_jobs={self.n_jobs!r} is out of range; use a positive number of processes or -1 "
                                f"(all cores)")
        if self.device not in ("cpu", "torch-cpu"):  # the batched torch solver: a GPU that is not there is one line
            from interp_af.models.devices import check_device

            check_device(self.device)


@dataclass(frozen=True)
class ProbeScore:
    """One curve point: a probe kind at one (site, position, layer), under one control ("none" = real labels)."""

    site: str
    position: str
    layer: int
    label: str
    kind: str
    control: str
    auroc: float
    auroc_lo: float
    auroc_hi: float
    accuracy: float
    accuracy_lo: float
    accuracy_hi: float
    C: float
    n_rows: int
    n_groups: int
    direction: str = ""    # which direction scored the rows: "decision_normal" (logreg) | "class_mean_difference"

    def __post_init__(self) -> None:
        if not self.direction:   # results saved before the field existed: it follows from the kind
            object.__setattr__(self, "direction", DIRECTION_OF_KIND.get(self.kind, ""))


@dataclass(frozen=True)
class ProbeResult:
    """A probe sweep: every score (real labels and controls) and the fitted probes (real labels only)."""

    config: ProbeConfig
    scores: tuple[ProbeScore, ...]
    probes: ProbeSet | None
    notes: tuple[str, ...] = ()

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame([asdict(s) for s in self.scores])

    @property
    def leakage(self) -> tuple[str, ...]:
        """One line per control curve that rose above the threshold (empty = no leakage found)."""
        out = []
        for s in self.scores:
            # Above the threshold *and* above chance beyond noise: with a few dozen queries a control's fold-mean
            # AUROC has a standard deviation near 0.1, so the point estimate alone would cry wolf.
            if s.control != "none" and s.auroc > self.config.leakage_threshold and not (s.auroc_lo <= 0.5):
                out.append(f"{s.control} control reached AUROC {s.auroc:.3f} [{s.auroc_lo:.3f}, {s.auroc_hi:.3f}] > "
                           f"{self.config.leakage_threshold} ({s.kind}, {s.site}@{s.position}, layer {s.layer}): "
                           "the split or preprocessing leaks")
        return tuple(out)

    def best(self, *, position: str | None = None, kind: str = "logreg") -> ProbeScore:
        """The real-label score with the highest AUROC (optionally at one position)."""
        cands = [s for s in self.scores if s.control == "none" and s.kind == kind and (position is None or s.position == position)]
        if not cands:
            raise InterpAFError(f"no {kind} scores at position {position!r} in this result")
        return max(cands, key=lambda s: (np.nan_to_num(s.auroc, nan=-1.0), -s.layer))

    def save(self, folder: str | Path, name: str = "probes") -> Path:
        """``folder/<name>.scores.json`` (config + scores + notes) and the probe pair ``folder/<name>.{json,safetensors}``."""
        from interp_af import atomic, owned

        folder = owned.ensure_dir(folder, what="probes")
        if self.probes is not None:
            self.probes.save(folder / name)
        f = folder / f"{name}.scores.json"
        doc = {"config": _jsonable(asdict(self.config)), "scores": [_jsonable(asdict(s)) for s in self.scores],
               "notes": list(self.notes), "leakage": list(self.leakage)}
        return atomic.write_json(f, doc, indent=1)

    @classmethod
    def load(cls, folder: str | Path, name: str = "probes") -> "ProbeResult":
        f = Path(folder) / f"{name}.scores.json"
        if not f.exists():
            raise InterpAFError(f"no probe results at {f}; run `interp-af probe` with --out {folder}")
        doc = json.loads(f.read_text())
        cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in doc["config"].items()}
        nan = float("nan")
        scores = tuple(ProbeScore(**{k: (nan if v is None else v) for k, v in s.items()}) for s in doc["scores"])
        probes = ProbeSet.load(Path(folder) / name) if (Path(folder) / f"{name}.json").exists() else None
        return cls(ProbeConfig(**cfg), scores, probes, tuple(doc.get("notes", ())))


# ---------------------------------------------------------------------------------------------------- core
def _fold_pairs(fold_N: np.ndarray, rows: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    rows = np.arange(len(fold_N)) if rows is None else rows
    return [(rows[fold_N[rows] != k], rows[fold_N[rows] == k]) for k in np.unique(fold_N[rows])]


def _score_curve(fits: list[LayerFit], splits: list[Split], y_N: np.ndarray, groups_N: np.ndarray, cfg: ProbeConfig,
                 n_cv: int) -> list[dict[str, float]]:
    """Per-layer fold-mean AUROC/accuracy (+ bootstrap) from the first ``n_cv`` splits (the CV folds)."""
    test = np.concatenate([sp.test for sp in splits[:n_cv]])
    fold = np.concatenate([np.full(len(sp.test), k) for k, sp in enumerate(splits[:n_cv])])
    out = []
    for fit in fits:
        s = torch.from_numpy(np.concatenate(fit.scores[:n_cv]))
        m = fold_scores(s, torch.from_numpy(y_N[test]), s > 0, fold, groups_N[test], n_boot=cfg.n_boot, seed=cfg.seed)
        cs = [c for c in fit.Cs[:n_cv] if not np.isnan(c)]
        m["C"] = float(np.median(cs)) if cs else float("nan")
        out.append(m)
    return out


def _sweep(X_NLD, y_N: np.ndarray, groups_N: np.ndarray, cfg: ProbeConfig, *, final: bool, desc: str
           ) -> dict[str, tuple[list[LayerFit], list[dict[str, float]]]]:
    """Every kind over every layer of one dataset: {kind: (fits, per-layer metrics)}."""
    fold = make_folds(y_N, groups_N, cfg.n_folds, cfg.seed)
    pairs = _fold_pairs(fold)
    if final:
        pairs.append((np.arange(len(y_N)), np.zeros(0, dtype=np.int64)))
    need_inner = "logreg" in cfg.kinds
    splits = make_splits(y_N, groups_N, pairs, cfg.val_frac, cfg.seed, need_inner=need_inner)
    out = {}
    for kind in cfg.kinds:
        fits = fit_layers(X_NLD, y_N, splits, kind, cfg.fit_spec(), n_jobs=cfg.n_jobs, desc=f"{desc} {kind}",
                          device=cfg.device)
        out[kind] = (fits, _score_curve(fits, splits, y_N, groups_N, cfg, cfg.n_folds))
    return out


def probe_layers(X_NLD, y_N, groups_N, *, config: ProbeConfig = ProbeConfig(), layers: Sequence[int] | None = None,
                 label: str = "label", site: str = "", position: str = "", model: Mapping[str, Any] | None = None,
                 source: Mapping[str, Any] | None = None, queries_N=None) -> ProbeResult:
    """Probe every layer of ``X [rows, layers, d]`` (numpy or torch; memory-mapped is fine) for binary ``y``,
    splitting by ``groups`` (query ids), with the configured controls. ``layers`` names axis 1 (default 0..L-1).

    ``queries`` (default: ``groups``) are the true query ids the same-label control draws its pseudo-labels by.
    They differ from ``groups`` only when a caller splits by something finer (pairs, rows): then the control's
    labels are shared by rows that land on both sides of a split, and it reports the leak.
    """
    y = np.asarray(y_N).astype(bool)
    groups = np.asarray(groups_N)
    queries = groups if queries_N is None else np.asarray(queries_N)
    n, L = X_NLD.shape[0], X_NLD.shape[1]
    if len(y) != n or len(groups) != n:
        raise InterpAFError(f"X has {n} rows but labels have {len(y)} and groups {len(groups)}; pass one per row")
    if y.all() or not y.any():
        raise InterpAFError(f"label {label!r} has one class only ({int(y.sum())} of {n} rows positive): probe a label with both classes")
    layers = tuple(range(L)) if layers is None else tuple(int(l) for l in layers)
    cfg = config
    n_groups = len(np.unique(groups))
    rng = np.random.default_rng(cfg.seed + 1)
    scores: list[ProbeScore] = []
    notes: list[str] = []

    def add(curves, control: str, nr: int, ng: int) -> None:
        for kind, (_, metrics) in curves.items():
            for layer, m in zip(layers, metrics):
                scores.append(ProbeScore(site, position, layer, label, kind, control, n_rows=nr, n_groups=ng, **m))

    def control_sweep(X, yc, gc, desc: str):
        # A control that cannot be split on small data (no grouped split keeps both pseudo-classes) is
        # skipped with a note: it must never take the real probe down with it.
        try:
            return _sweep(X, yc, gc, replace(cfg, n_boot=min(cfg.n_boot, 200)), final=False, desc=desc)
        except InterpAFError as err:
            notes.append(f"{desc} control skipped at {position or 'probe'}: {err}")
            return None

    main = _sweep(X_NLD, y, groups, cfg, final=cfg.fit_final, desc=f"{position or 'probe'}")
    add(main, "none", n, n_groups)
    if "random" in cfg.controls:
        y_perm = permute_within_groups(y, groups, rng)
        curves = control_sweep(X_NLD, y_perm, groups, "random")
        if curves is not None:
            add(curves, "random", n, n_groups)
    if "same_label" in cfg.controls:
        # Pseudo-labels drawn per query can correlate by chance with what the queries are about (harmful or
        # not, ...), which a probe may then decode for real; averaging a few draws shrinks that chance.
        runs = []
        for _ in range(max(1, cfg.same_label_repeats)):
            ctl = same_label_control(y, queries, rng, min_groups=2 * cfg.n_folds)
            if ctl is None:
                notes.append(f"same-label control skipped at {position or 'probe'}: no class has {2 * cfg.n_folds} queries")
                break
            rows, y_pseudo = ctl
            X_sub = X_NLD[torch.from_numpy(rows)] if isinstance(X_NLD, torch.Tensor) else X_NLD[rows]
            run = control_sweep(X_sub, y_pseudo, groups[rows], "same-label")
            if run is None:
                break
            runs.append(run)
        if runs:
            mean = {kind: (None, [{k: float(np.mean([r[kind][1][li][k] for r in runs])) for k in runs[0][kind][1][li]}
                                  for li in range(len(layers))]) for kind in runs[0]}
            add(mean, "same_label", len(rows), len(np.unique(groups[rows])))
    probes = None
    if cfg.fit_final:
        dirs, class_dirs, biases, entries = [], [], [], []
        by_key = {(s.kind, s.layer): s for s in scores if s.control == "none"}
        for kind, (fits, _) in main.items():
            for layer, fit in zip(layers, fits):
                s = by_key[(kind, layer)]
                dirs.append(torch.from_numpy(fit.direction).float())
                class_dirs.append(torch.from_numpy(fit.class_direction).float())
                biases.append(fit.bias)
                entries.append(ProbeEntry(layer, site, position, label, kind, C=fit.Cs[-1],
                                          metrics={k: getattr(s, k) for k in ("auroc", "auroc_lo", "auroc_hi", "accuracy",
                                                                              "accuracy_lo", "accuracy_hi")},
                                          direction=DIRECTION_OF_KIND[kind]))
        probes = ProbeSet(torch.stack(dirs), torch.tensor(biases, dtype=torch.float32), tuple(entries),
                          dict(model or {}), dict(source or {}), torch.stack(class_dirs))
    return ProbeResult(cfg, tuple(scores), probes, tuple(notes))


def merge(results: Sequence[ProbeResult]) -> ProbeResult:
    """One result from several (e.g. one per position); configs must match."""
    if not results:
        raise InterpAFError("nothing to merge: no probe results")
    sets = [r.probes for r in results if r.probes is not None]
    probes = None
    if sets:
        classes = [p.class_directions for p in sets]
        probes = ProbeSet(torch.cat([p.directions for p in sets]), torch.cat([p.biases for p in sets]),
                          tuple(e for p in sets for e in p.entries), sets[0].model, sets[0].source,
                          torch.cat(classes) if all(c is not None for c in classes) else None)
    return ProbeResult(results[0].config, tuple(s for r in results for s in r.scores), probes,
                       tuple(n for r in results for n in r.notes))


# ---------------------------------------------------------------------------------------------------- capture
def select_rows(meta, where: str | None) -> np.ndarray:
    """Row indices of ``meta`` kept by a pandas query string (``None`` = all)."""
    if not where:
        return np.arange(len(meta))
    try:
        kept = meta.query(where, engine="python")
    except Exception as err:  # pandas raises many types for a bad expression
        raise InterpAFError(f"--where {where!r} is not a valid filter on the capture metadata ({type(err).__name__}: "
                            f"{str(err).splitlines()[0] if str(err) else ''}); columns: {', '.join(map(str, meta.columns))}") from None
    if len(kept) == 0:
        raise InterpAFError(f"--where {where!r} keeps no rows; check the values in the capture metadata")
    return np.array(kept.index.to_numpy(), dtype=np.int64)  # a writable copy (torch indexes with it)


def probe_capture(capture: Any, label: str, *, site: str = "resid_post", positions: Sequence[str] | None = None,
                  where: str | None = None, group: str = "query_id", config: ProbeConfig = ProbeConfig()) -> ProbeResult:
    """Probe ``label`` at every captured layer of ``site``, at each named position (default: all captured),
    on the rows kept by ``where`` (a pandas query over :meth:`Capture.meta`). Rows where a position is absent
    (e.g. the cue of a no-cue arm) are left out at that position, and said so in ``notes``."""
    if isinstance(capture, (str, Path)):
        from interp_af.acts.store import open_capture

        capture = open_capture(capture)  # checksums verified (cached by stat)
    if site not in capture.sites:
        raise InterpAFError(f"site {site!r} was not captured; captured sites: {', '.join(capture.sites)}")
    positions = tuple(positions) if positions else tuple(capture.positions)
    meta = capture.meta()
    if group not in meta.columns:
        raise InterpAFError(f"group column {group!r} is not in the capture metadata; use query_id")
    if group != "query_id":
        import warnings

        warnings.warn(f"splitting by {group!r} instead of query_id: rows of one query may sit on both sides of a "
                      "split; the same-label control (labels drawn by query) will show the leak", stacklevel=2)
    rows = select_rows(meta, where)
    y_all, desc = resolve_label(meta.iloc[rows].reset_index(drop=True), label)
    source = {"capture": str(capture.path), "prompts": capture.manifest.get("prompts", {}).get("sha256", ""),
              "where": where or "", "label": desc, "site": site}
    results = []
    for pos in positions:
        acts = capture.acts(site, pos)  # [rows, layers, d], memory-mapped
        X = acts[torch.from_numpy(rows)].float()
        X = X.reshape(X.shape[0], X.shape[1], -1)  # head_out [rows, layers, heads, d_head]: heads side by side
        ok = ~torch.isnan(X.reshape(len(rows), -1)).any(1).numpy()
        note = ()
        if not ok.all():
            note = (f"{pos}: {int((~ok).sum())} of {len(rows)} rows have no such position and were left out",)
        if ok.sum() == 0:
            results.append(ProbeResult(config, (), None, (f"{pos}: no row has this position; skipped",)))
            continue
        y, g = y_all[ok], meta[group].to_numpy()[rows][ok]
        qid = meta["query_id"].to_numpy()[rows][ok]
        if y.all() or not y.any():
            results.append(ProbeResult(config, (), None, note + (f"{pos}: one class only among rows with this position; skipped",)))
            continue
        r = probe_layers(X[torch.from_numpy(ok)], y, g, config=config, layers=capture.layers, label=desc, site=site,
                         position=pos, model=capture.model, source=source, queries_N=qid)
        results.append(replace(r, notes=note + r.notes))
    return merge(results)
