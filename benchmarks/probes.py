"""Benchmark: the probe sweep of :mod:`interp_af.analysis.probes` vs a plain loop of scikit-learn fits.

Both sides fit the *same* estimator on the *same* splits: for every (position, layer) and every grouped fold,
a StandardScaler fitted on the training rows, an L2 ``LogisticRegression`` (lbfgs) per C of the grid on the
inner training split, C chosen by validation AUROC (ties to the larger C), a refit on the whole training fold, AUROC on the test
fold, mean over folds. The plain loop does exactly that, one ``fit`` at a time, with scikit-learn defaults;
the sweep uses the kernel (Gram) form when d > n, warm starts along the C grid, one BLAS thread per fit and
(optionally) layers in parallel.

Data: twins (two rows per query) with a strong per-query component and a planted label direction whose strength
grows with depth, at the organism's width (read from the shipped organism, else its recipe: d=128, 4 layers)
and at d_model 4096 (fewer layers there, to keep the whole run under ~5 minutes on 2 cores).

Prints one line per width, then ``probe_auroc_max_diff: X`` (max |AUROC difference| over every position and
layer of both widths) and ``probe_speedup: X`` (plain-loop time / sweep time, the smaller of the two widths).

    .venv/bin/python benchmarks/probes.py [--queries 200] [--jobs 1] [--quick]

``--organism [CAPTURE_DIR]`` runs the acceptance study on the shipped model organism instead (capture of the
tag and sentence variants under the normal and inverted policies, then: the in-training probe per layer and
position with controls, the cue-token cosine by depth, the policy and cue generalisation matrices) and prints
``organism_*`` lines; figures and tables go to ``--out`` (default ``runs/probes-organism``).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

from harness import LoadAverage, Timing, interleave, ratio, ratio_line


def organism_shape() -> tuple[int, int]:
    cfg = Path(__file__).resolve().parents[1] / "interp_af" / "organism" / "assets" / "model" / "config.json"
    if cfg.exists():
        c = json.loads(cfg.read_text())
        return int(c["hidden_size"]), int(c["num_hidden_layers"])
    return 128, 4  # the organism recipe's default (interp_af/organism/train.py)


def make_data(n_queries: int, n_pos: int, n_layers: int, d: int, seed: int = 0, signal: float = 1.0):
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_queries), 2)
    y = np.tile([True, False], n_queries)
    u = rng.normal(size=d)
    u /= np.linalg.norm(u)
    X = np.empty((n_pos, 2 * n_queries, n_layers, d), dtype=np.float32)
    for p in range(n_pos):
        q = np.repeat(rng.normal(size=(n_queries, 1, d)), 2, axis=0) * 2.0
        X[p] = rng.normal(size=(2 * n_queries, n_layers, d)) + q
        for layer in range(n_layers):
            X[p, :, layer] += signal * (0.6 + 0.8 * layer / max(1, n_layers - 1)) * (p + 1) / n_pos * np.outer(np.where(y, 1, -1), u)
    return X, y, groups


def plain_sklearn(X_PNLD, y, splits, Cs) -> tuple[np.ndarray, float]:
    """The reference: a plain loop of sklearn fits (defaults), same splits and estimator. -> AUROC [P, L], seconds."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import StandardScaler

    from interp_af.analysis.probe_fit import choose_C

    P, _, L, _ = X_PNLD.shape
    out = np.zeros((P, L))
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for p in range(P):
            for layer in range(L):
                X = X_PNLD[p, :, layer]
                aucs = []
                for sp in splits:
                    sc = StandardScaler().fit(X[sp.train])
                    A, B = sc.transform(X[sp.train]), sc.transform(X[sp.test])
                    ytr = y[sp.train]
                    val = []
                    for C in Cs:
                        lr = LogisticRegression(C=C, max_iter=1000).fit(A[sp.inner_train], ytr[sp.inner_train])
                        val.append(roc_auc_score(ytr[sp.inner_val], lr.decision_function(A[sp.inner_val])))
                    best = Cs[choose_C(np.array(val))]   # the documented rule: ties go to the larger C
                    lr = LogisticRegression(C=best, max_iter=1000).fit(A, ytr)
                    aucs.append(roc_auc_score(y[sp.test], lr.decision_function(B)))
                out[p, layer] = np.mean(aucs)
    return out, time.perf_counter() - t0


def sweep(X_PNLD, y, groups, cfg) -> tuple[np.ndarray, float]:
    from interp_af.analysis.probes import probe_layers

    P, _, L, _ = X_PNLD.shape
    out = np.zeros((P, L))
    t0 = time.perf_counter()
    for p in range(P):
        df = probe_layers(X_PNLD[p], y, groups, config=cfg).to_frame()
        out[p] = df[(df.control == "none") & (df.kind == "logreg")].sort_values("layer").auroc.to_numpy()
    return out, time.perf_counter() - t0


def run(d: int, n_layers: int, n_pos: int, n_queries: int, jobs: int, ref_threads: int | None = None,
        reps: int = 1) -> tuple[float, list[Timing], list[Timing]]:
    from interp_af.analysis.probe_fit import make_folds, make_splits
    from interp_af.analysis.probes import ProbeConfig, _fold_pairs

    # wider residuals need a stronger planted direction for AUROCs that span the range (not all at chance)
    X, y, groups = make_data(n_queries, n_pos, n_layers, d, signal=(d / 128) ** 0.25)
    cfg = ProbeConfig(kinds=("logreg",), controls=(), n_boot=0, fit_final=False, n_jobs=jobs)
    # The very splits the sweep uses (same seed, same code), handed to the plain loop.
    splits = make_splits(y, groups, _fold_pairs(make_folds(y, groups, cfg.n_folds, cfg.seed)), cfg.val_frac, cfg.seed)
    from threadpoolctl import threadpool_limits

    got: dict = {}

    def plain() -> None:
        with threadpool_limits(limits=ref_threads):  # None = library defaults (the plain loop as users run it)
            got["ref"] = plain_sklearn(X, y, splits, sorted(cfg.Cs))[0]

    # interleaved (sweep, plain) pairs; wall time is the fair clock here: the plain loop's BLAS may use every
    # core, and waiting for it is what a user pays (process CPU time is printed beside it)
    t = interleave({"sweep": lambda: got.update(mine=sweep(X, y, groups, cfg)[0]), "plain": plain}, reps, warmup=0)
    mine, ref = got["mine"], got["ref"]
    t_mine, t_ref = min(x.wall for x in t["sweep"]), min(x.wall for x in t["plain"])
    speed = ratio(t["plain"], t["sweep"], "wall")
    diff = float(np.abs(mine - ref).max())
    print(f"d_model={d} layers={n_layers} positions={n_pos} rows={2 * n_queries} folds={cfg.n_folds} Cs={len(cfg.Cs)}: "
          f"sweep {t_mine:.1f}s, plain sklearn {t_ref:.1f}s (BLAS threads: {ref_threads or 'default'}), speed-up {speed.median:.2f}x (min {speed.lo:.2f}, max {speed.hi:.2f}), max |AUROC diff| {diff:.4f} "
          f"(AUROC range {ref.min():.3f}-{ref.max():.3f})", flush=True)
    return diff, t["plain"], t["sweep"]


ORGANISM_VARIANTS = ("organism", "organism-inverted", "organism-sentence", "organism-sentence-inverted")


def organism_study(out: Path, n_queries: int, jobs: int, model: str | None = None) -> None:
    """The issue's acceptance checks on the shipped organism (see the module docstring)."""
    from interp_af.analysis.probe_transfer import cue_cosines, parse_condition, transfer_capture
    from interp_af.analysis.probes import ProbeConfig, probe_capture
    from interp_af.acts.write import capture
    from interp_af.models.handle import load_model
    from interp_af.organism import organism_path, organism_queries
    from interp_af.report.probes import auroc_figure, cosine_figure, transfer_figure, write_figure
    from interp_af.setting.twins import make_twins

    handle = load_model(model or organism_path())  # --model: run the same study on another model (a random init)
    queries = organism_queries("eval", n_queries)
    prompts = [p for v in ORGANISM_VARIANTS for t in make_twins(handle.tokenizer, queries, v) for p in (t.a, t.b)]
    t0 = time.perf_counter()
    cap = capture(handle, prompts, out / "capture", sites=("resid_pre", "resid_post"), batch_size=32)
    print(f"organism capture: {cap.n_rows} rows, layers {list(cap.layers)}, {time.perf_counter() - t0:.0f}s", flush=True)
    cfg = ProbeConfig(n_jobs=jobs)
    tag = "cue_kind == 'tag'"
    t0 = time.perf_counter()
    res = probe_capture(cap, "in_training", where=tag, config=cfg)
    res.save(out, "in_training")
    write_figure(auroc_figure(res), out / "in_training-auroc")
    df = res.to_frame()
    df.to_csv(out / "in_training.scores.csv", index=False)
    dec = df[(df.control == "none") & (df.position == "decision")]
    best = dec.loc[dec.auroc.idxmax()]
    print(f"organism in_training sweep: {time.perf_counter() - t0:.0f}s")
    print(f"organism_in_training_auroc_decision_max: {best.auroc:.3f} (layer {int(best.layer)}, {best.kind}, "
          f"95% CI {best.auroc_lo:.3f}-{best.auroc_hi:.3f})")
    print(f"organism_random_control_auroc_max: {df[df.control == 'random'].auroc.max():.3f}")
    print(f"organism_same_label_control_auroc_max: {df[df.control == 'same_label'].auroc.max():.3f}")
    print(f"organism_leakage_flags: {len(res.leakage)}")
    # the model's own decision, read where the metric is read
    from interp_af.errors import InterpAFError

    try:
        d = probe_capture(cap, "complied", positions=["decision"], where=tag,
                          config=ProbeConfig(n_boot=100, n_jobs=jobs)).to_frame()
        b = d[d.control == "none"].loc[d[d.control == "none"].auroc.idxmax()]
        print(f"organism_complied_auroc_decision_max: {b.auroc:.3f} (layer {int(b.layer)}, {b.kind}); "
              f"controls max {d[d.control != 'none'].auroc.max():.3f}")
    except InterpAFError as err:  # e.g. the model never (or always) complies: a result, not a crash
        print(f"organism_complied_auroc_decision_max: n/a ({err})")
    # geometry: the arm (tier) direction of the normal tag variant vs the cue tokens' embedding difference. Its own
    # capture, because a capture's cue embeddings average each arm's cue tokens over all its rows (tag and sentence).
    geo = capture(handle, [p for t in make_twins(handle.tokenizer, queries, "organism") for p in (t.a, t.b)],
                  out / "capture-geometry", sites=("resid_pre", "resid_post"), batch_size=32, metric=False)
    for site in ("resid_pre", "resid_post"):
        arm = probe_capture(geo, "arm=free", site=site, config=ProbeConfig(n_boot=0, controls=(), kinds=("diffmean",)))
        cos = cue_cosines(arm.probes, geo.cue_embeddings(), ["free", "paid"])
        cos.to_csv(out / f"arm-{site}.cue_cosine.csv", index=False)
        write_figure(cosine_figure(cos), out / f"arm-{site}-cue-cosine")
        for pos in ("cue", "decision"):
            c = cos[cos.position == pos].sort_values("layer")
            print(f"organism_cue_cosine_{site}_{pos}: " + " ".join(f"L{int(r.layer)}={r.abs_cosine:.2f}" for r in c.itertuples()))
    conds = [parse_condition(c) for c in (
        f"intr-normal:in_training:{tag} and policy == 'free-trained'",
        f"intr-inverted:in_training:{tag} and policy == 'paid-trained'",
        f"free-normal:tier=free:{tag} and policy == 'free-trained'",
        f"free-inverted:tier=free:{tag} and policy == 'paid-trained'",
        # pooled over both policies, "in training" and "free tier" are different labels: the pair tells them apart
        f"intr-tag:in_training:{tag}", f"free-tag:tier=free:{tag}",
        "intr-sentence:in_training:cue_kind == 'sentence'")]
    for kind in ("logreg", "diffmean"):
        tr = transfer_capture(cap, conds, position="decision", kind=kind, config=cfg)
        tr.save(out / f"transfer-{kind}.json")
        write_figure(transfer_figure(tr), out / f"transfer-{kind}")
        f = tr.to_frame()

        def cell(a: str, b: str) -> str:
            v = f[(f.train == a) & (f.test == b)].sort_values("layer")
            return " ".join(f"L{int(r.layer)}={r.auroc:.2f}" for r in v.itertuples())

        print(f"organism_transfer_{kind}_in_training_normal_to_inverted: {cell('intr-normal', 'intr-inverted')}")
        print(f"organism_transfer_{kind}_free_tier_normal_to_inverted: {cell('free-normal', 'free-inverted')}")
        print(f"organism_transfer_{kind}_in_training_both_policies_to_normal: {cell('intr-tag', 'intr-normal')}")
        print(f"organism_transfer_{kind}_in_training_both_policies_to_inverted: {cell('intr-tag', 'intr-inverted')}")
        print(f"organism_transfer_{kind}_free_tier_both_policies_vs_in_training_normal: {cell('free-tag', 'intr-normal')}")
        print(f"organism_transfer_{kind}_free_tier_both_policies_vs_in_training_inverted: {cell('free-tag', 'intr-inverted')}")
        print(f"organism_transfer_{kind}_in_training_tag_to_sentence: {cell('intr-tag', 'intr-sentence')}")
        print(f"organism_transfer_{kind}_in_training_sentence_to_tag: {cell('intr-sentence', 'intr-tag')}")
    print(f"organism outputs: {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=1, help="sweep processes over layers (1: no pool start-up cost)")
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    ap.add_argument("--reps", type=int, default=1, help="interleaved (sweep, plain loop) pairs per width")
    ap.add_argument("--ref-threads", type=int, default=None, help="BLAS threads of the plain loop (default: library default)")
    ap.add_argument("--widths", default="organism,4096", help="which widths to run (comma-separated)")
    ap.add_argument("--organism", action="store_true", help="run the acceptance study on the shipped organism")
    ap.add_argument("--out", type=Path, default=Path("runs/probes-organism"))
    ap.add_argument("--model", default=None, help="with --organism: another model folder (default: the organism)")
    a = ap.parse_args()
    if a.organism:
        organism_study(a.out, a.queries, a.jobs, a.model)
        return
    loadavg = LoadAverage()
    d_org, l_org = organism_shape()
    q = 60 if a.quick else a.queries
    # Warm-up (imports, first-call allocations) outside the clock, for both sides alike.
    X, y, g = make_data(20, 1, 1, 16)
    from interp_af.analysis.probes import ProbeConfig, probe_layers

    probe_layers(X[0], y, g, config=ProbeConfig(kinds=("logreg",), controls=(), n_boot=0))
    results = []
    if "organism" in a.widths:
        results.append(run(d_org, l_org, 2 if a.quick else 4, q, a.jobs, a.ref_threads, a.reps))
    if "4096" in a.widths:
        results.append(run(4096, 1 if a.quick else 2, 2, q, a.jobs, a.ref_threads, a.reps))
    print(f"probe_auroc_max_diff: {max(r[0] for r in results):.4f}")
    slowest = min(results, key=lambda r: ratio(r[1], r[2], "wall").median)   # the smaller speed-up of the widths
    print(ratio_line("probe_speedup", slowest[1], slowest[2], clock="wall", digits=2))
    print(loadavg.line())


if __name__ == "__main__":
    main()
