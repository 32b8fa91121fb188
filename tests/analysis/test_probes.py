"""Probes: planted directions are found, noise stays at chance, the known leaks are caught, artifacts round-trip,
bad input gets one-line errors, and a random-init model yields no discovery beyond its cue token."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp_af.analysis.probe_artifact import ProbeSet
from interp_af.analysis.probe_fit import FitSpec, _auroc, fit_layer, make_folds, make_splits
from interp_af.analysis.probe_labels import permute_within_groups, resolve_label
from interp_af.analysis.probe_stats import cluster_weights, weighted_auroc
from interp_af.analysis.probe_transfer import Condition, cue_cosines, parse_condition, transfer_layers
from interp_af.analysis.probes import ProbeConfig, ProbeResult, probe_layers
from interp_af.errors import InterpAFError

FAST = ProbeConfig(n_boot=100, Cs=(1e-2, 1e-1, 1.0))


def twins_data(n_queries: int, n_layers: int, d: int, signal_by_layer: list[float], *, seed: int = 0,
               query_noise: float = 2.0, label: str = "arm"):
    """Two rows per query (arm 1 / arm 0) with a strong per-query component (shared by the twins) and a planted
    label direction whose strength varies by layer. Returns X [N, L, d], y, groups, the planted unit direction."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_queries), 2)
    y = np.tile([True, False], n_queries) if label == "arm" else np.repeat(rng.random(n_queries) < 0.5, 2)
    X = rng.normal(size=(2 * n_queries, n_layers, d)) + query_noise * np.repeat(rng.normal(size=(n_queries, 1, d)), 2, axis=0)
    u = rng.normal(size=d)
    u /= np.linalg.norm(u)
    for layer, s in enumerate(signal_by_layer):
        X[:, layer] += s * np.outer(np.where(y, 0.5, -0.5), u)
    return X.astype(np.float32), y, groups, u


# ------------------------------------------------------------------------------------------------ statistics
def test_weighted_auroc_matches_sklearn_with_ties_and_weights():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    s = np.round(rng.normal(size=200), 1)  # many ties
    y = rng.random(200) < 0.4
    assert float(weighted_auroc(torch.tensor(s), torch.tensor(y))[0]) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert _auroc(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    w = rng.integers(0, 3, size=200).astype(float)
    got = float(weighted_auroc(torch.tensor(s), torch.tensor(y), torch.tensor(w)[None])[0])
    assert got == pytest.approx(roc_auc_score(y, s, sample_weight=w), abs=1e-12)


def test_cluster_weights_resample_whole_groups():
    groups = np.repeat(np.arange(10), 3)
    w = cluster_weights(groups, 50, np.random.default_rng(0)).numpy()
    assert w.shape == (50, 30)
    assert (w.reshape(50, 10, 3) == w.reshape(50, 10, 3)[:, :, :1]).all()  # rows of a group share a weight
    assert (w.sum(1) == 30).all()  # as many groups drawn as there are


# ------------------------------------------------------------------------------------------------ solver
def test_kernel_trick_fits_the_same_probe_as_the_primal_problem():
    X, y, groups, _ = twins_data(40, 1, 300, [3.0], seed=3)  # d=300 > n_train: the Gram route is taken
    fold = make_folds(y, groups, 4, 0)
    pairs = [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(4)] + [(np.arange(len(y)), np.zeros(0, int))]
    splits = make_splits(y, groups, pairs, 0.25, 0)
    kern = fit_layer(X[:, 0], y, splits, "logreg", FitSpec(Cs=(0.01, 0.1), tol=1e-8, kernel_trick=True))
    prim = fit_layer(X[:, 0], y, splits, "logreg", FitSpec(Cs=(0.01, 0.1), tol=1e-8, kernel_trick=False))
    assert kern.Cs == prim.Cs
    for a, b in zip(kern.scores, prim.scores):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)
    cos = kern.direction @ prim.direction / np.linalg.norm(kern.direction) / np.linalg.norm(prim.direction)
    assert cos > 0.999
    # the saved direction acts on raw activations: it reproduces the held-out scores of the final fit
    raw = X[:, 0].astype(np.float64) @ kern.direction + kern.bias
    assert np.corrcoef(raw, X[:, 0].astype(np.float64) @ prim.direction + prim.bias)[0, 1] > 0.999


def test_batched_torch_solver_matches_sklearn():
    """The GPU path (run here on the CPU) reaches the same optimum: same AUROCs, same directions."""
    X, y, groups, _ = twins_data(40, 3, 96, [0.5, 2.0, 4.0], seed=8)  # d=96 > n_train: kernel form on both paths
    cfg = ProbeConfig(n_boot=0, controls=(), Cs=(1e-2, 1e-1, 1.0), n_folds=4)
    a = probe_layers(X, y, groups, config=cfg)
    b = probe_layers(X, y, groups, config=ProbeConfig(**{**cfg.__dict__, "device": "torch-cpu"}))
    np.testing.assert_allclose(a.to_frame().auroc, b.to_frame().auroc, atol=0.01)
    cos = torch.nn.functional.cosine_similarity(a.probes.directions, b.probes.directions, dim=1)
    assert cos.min() > 0.99
    torch.testing.assert_close(a.probes.class_directions, b.probes.class_directions, atol=1e-5, rtol=1e-5)


def test_C_ties_go_to_the_larger_C_with_one_rule_on_both_solver_paths():
    from interp_af.analysis.probe_fit import choose_C
    from interp_af.analysis.probe_torch import choose_C_batched

    assert choose_C(np.array([0.8, 0.9, 0.9, 0.85])) == 2
    assert choose_C(np.array([1.0, 1.0, 1.0])) == 2
    assert choose_C(np.array([0.9, np.nan, 0.7])) == 0
    assert choose_C(np.array([0.9, 0.9 - 1e-12, 0.7])) == 1          # equal up to rounding: a tie
    rng = np.random.default_rng(0)
    val = np.round(rng.random((200, 5)) * 4) / 4                       # coarse values: many ties
    val[rng.random(val.shape) < 0.05] = np.nan
    got = choose_C_batched(torch.from_numpy(val)).numpy()
    assert got.tolist() == [choose_C(v) for v in val]
    # perfectly separable twins: every C ties at validation AUROC 1, so every fold takes the largest C, on both paths
    X, y, groups, _ = twins_data(40, 2, 96, [40.0, 40.0], seed=6)
    fold = make_folds(y, groups, 4, 0)
    pairs = [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(4)]
    splits = make_splits(y, groups, pairs, 0.25, 0)
    spec = FitSpec(Cs=(1e-3, 1e-2, 1e-1, 1.0, 10.0))
    from interp_af.analysis.probe_fit import fit_layers

    for device in ("cpu", "torch-cpu"):
        for fit in fit_layers(X, y, splits, "logreg", spec, device=device):
            assert fit.Cs == (10.0,) * 4, (device, fit.Cs)


@pytest.mark.parametrize("device", ["cpu", "torch-cpu"])
def test_auroc_at_the_chosen_C_matches_a_scikit_learn_refit_on_the_same_folds(device):
    """Each fold's held-out AUROC equals (within 0.01) that of scikit-learn's own StandardScaler +
    LogisticRegression refit at the C this fold chose, on the same training rows (kernel form on both paths)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from interp_af.analysis.probe_fit import fit_layers

    X, y, groups, _ = twins_data(60, 1, 96, [3.0], seed=9, query_noise=1.0)   # informative, not separable
    fold = make_folds(y, groups, 5, 0)
    pairs = [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(5)]
    splits = make_splits(y, groups, pairs, 0.25, 0)
    fit = fit_layers(X, y, splits, "logreg", FitSpec(), device=device)[0]
    ours, theirs = [], []
    for sp, scores, c in zip(splits, fit.scores, fit.Cs):
        ref = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=20000, tol=1e-10))
        ref.fit(X[sp.train, 0], y[sp.train])
        ours.append(_auroc(scores, y[sp.test]))
        theirs.append(_auroc(ref.decision_function(X[sp.test, 0]), y[sp.test]))
    np.testing.assert_allclose(ours, theirs, atol=0.01)
    assert 0.6 < np.mean(ours) < 0.99   # the test has teeth: neither chance nor trivially separable


# ------------------------------------------------------------------------------------------------ sweeps
def test_planted_direction_is_found_at_its_layers_only_and_controls_stay_at_chance():
    X, y, groups, u = twins_data(80, 3, 24, [0.0, 3.0, 6.0])
    res = probe_layers(X, y, groups, config=FAST, label="arm")
    df = res.to_frame()
    real = df[df.control == "none"].set_index(["kind", "layer"]).auroc
    for kind in ("logreg", "diffmean"):
        assert 0.35 < real[(kind, 0)] < 0.65, "no signal at layer 0"
        assert real[(kind, 1)] > 0.8 and real[(kind, 2)] > 0.95
    row = df[(df.control == "none") & (df.layer == 2) & (df.kind == "logreg")].iloc[0]
    assert row.auroc_lo <= row.auroc <= row.auroc_hi and row.auroc_hi - row.auroc_lo < 0.2
    assert (df[df.control != "none"].auroc <= 0.6).all() and res.leakage == ()
    assert set(df.control) == {"none", "random", "same_label"}
    # the difference-of-means direction at the strong layer is the planted one
    d = res.probes.select(layer=2, kind="diffmean").directions[0].numpy()
    assert abs(d @ u) / np.linalg.norm(d) > 0.8


def test_pure_noise_stays_at_chance_everywhere():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(240, 3, 16)).astype(np.float32)
    y, groups = rng.random(240) < 0.5, np.repeat(np.arange(120), 2)
    df = probe_layers(X, y, groups, config=FAST).to_frame()
    assert (df.auroc.between(0.35, 0.65)).all(), df[["kind", "control", "layer", "auroc"]]


def test_split_by_query_avoids_the_false_discovery_that_a_row_split_makes():
    # A per-query label the activations do not carry, but twins share a query component: a row split lets the
    # probe recognise the query (its twin is in training) and "discover" the label; a query split does not.
    X, y, groups, _ = twins_data(60, 1, 200, [0.0], label="per-query", query_noise=4.0, seed=5)
    grouped = probe_layers(X, y, groups, config=FAST).to_frame()
    assert grouped[grouped.control == "none"].auroc.max() < 0.65
    by_row = probe_layers(X, y, np.arange(len(y)), config=ProbeConfig(n_boot=100, controls=("same_label",), Cs=(1.0,)),
                          queries_N=groups)
    assert by_row.to_frame().query("control == 'none'").auroc.max() > 0.8
    # the same-label control (pseudo-labels drawn by query, split by row) flags the row split as leakage
    assert any("same_label" in line for line in by_row.leakage)
    assert grouped.query("control != 'none'").auroc.max() <= 0.6


def test_random_label_permutation_keeps_group_structure():
    y = np.array([1, 0, 1, 0, 1, 1, 0, 0], bool)
    g = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    p = permute_within_groups(y, g, np.random.default_rng(0))
    assert p.sum() == y.sum()
    sizes = sorted(int(p[g == k].sum()) for k in range(4))
    assert sizes == sorted(int(y[g == k].sum()) for k in range(4))  # per-query label counts are kept


# ------------------------------------------------------------------------------------------------ transfer, geometry
def test_transfer_matrix_tells_an_abstract_in_training_direction_from_the_tier_cue():
    rng = np.random.default_rng(2)
    Q, d = 60, 16
    groups = np.repeat(np.arange(Q), 4)
    policy = np.tile([0, 0, 1, 1], Q)          # 0 = normal (free trained), 1 = inverted (paid trained)
    free = np.tile([1, 0, 1, 0], Q).astype(bool)
    in_tr = np.where(policy == 0, free, ~free)
    X = rng.normal(size=(4 * Q, 2, d)).astype(np.float32)
    X[:, 0, 0] += np.where(free, 2.0, -2.0)    # layer 0: the tier token only
    X[:, 1, 1] += np.where(in_tr, 2.0, -2.0)   # layer 1: "being trained", whatever the tier
    n, i = np.flatnonzero(policy == 0), np.flatnonzero(policy == 1)
    labelled = [(n, in_tr[n]), (i, in_tr[i]), (n, free[n]), (i, free[i])]
    conds = [Condition("intr-normal", "in_training"), Condition("intr-inverted", "in_training"),
             Condition("free-normal", "tier=free"), Condition("free-inverted", "tier=free")]
    tr = transfer_layers(X, labelled, groups, conditions=conds, config=FAST.__class__(n_folds=4, Cs=(0.1, 1.0)))
    m1 = tr.matrix(1)
    assert m1.loc["intr-normal", "intr-inverted"] > 0.9      # in_training generalises across policies
    assert m1.loc["free-normal", "free-inverted"] < 0.1      # the tier probe flips
    m0 = tr.matrix(0)
    assert m0.loc["intr-normal", "intr-inverted"] < 0.1 and m0.loc["free-normal", "free-inverted"] > 0.9
    assert np.diag(m1.to_numpy()).min() > 0.9
    assert len(tr.to_frame()) == 4 * 4 * 2
    assert parse_condition("inv:in_training:policy == 'paid-trained'") == Condition("inv", "in_training", "policy == 'paid-trained'")
    with pytest.raises(InterpAFError):
        parse_condition("just-a-name")


def test_cue_cosine_falls_where_the_direction_stops_being_the_token():
    rng = np.random.default_rng(4)
    d, Q = 32, 60
    e_free, e_paid = rng.normal(size=d), rng.normal(size=d)
    rot = np.linalg.qr(rng.normal(size=(d, d)))[0]
    groups = np.repeat(np.arange(Q), 2)
    y = np.tile([True, False], Q)
    tok = np.where(y[:, None], e_free, e_paid)
    X = np.stack([tok + 0.3 * rng.normal(size=(2 * Q, d)), tok @ rot + 0.3 * rng.normal(size=(2 * Q, d))], 1)
    res = probe_layers(X.astype(np.float32), y, groups, config=FAST.__class__(n_boot=0, controls=(), kinds=("diffmean",)))
    cos = cue_cosines(res.probes, {"free": torch.tensor(e_free), "paid": torch.tensor(e_paid)}, ["free", "paid"])
    c = cos.set_index("layer").abs_cosine
    assert c[0] > 0.95 and c[1] < 0.5


def test_cue_cosine_is_the_class_directions_even_for_logistic_probes():
    """The representation is exactly the cue tokens' embedding difference, under per-query noise (shared by the
    twins) whose spread differs by two orders of magnitude across features. The class direction has cosine ~1
    with the embedding difference; the logistic weight mapped back as w / sd (the decision normal) reads low;
    the cosine reported for the logistic probe is the class direction's, and every output says which it is."""
    rng = np.random.default_rng(0)
    d, Q = 32, 100
    e_free, e_paid = rng.normal(size=d), rng.normal(size=d)
    spread = np.geomspace(0.05, 5.0, d)
    rng.shuffle(spread)
    q = rng.normal(size=(Q, d)) * spread
    X = np.repeat(q, 2, axis=0) + np.tile(np.stack([e_free, e_paid]), (Q, 1)) + 0.01 * rng.normal(size=(2 * Q, d))
    y, groups = np.tile([True, False], Q), np.repeat(np.arange(Q), 2)
    res = probe_layers(X[:, None].astype(np.float32), y, groups, config=ProbeConfig(n_boot=0, controls=()))
    assert dict(zip(res.to_frame().kind, res.to_frame().direction)) == {"logreg": "decision_normal",
                                                                        "diffmean": "class_mean_difference"}
    cos = cue_cosines(res.probes, {"free": torch.tensor(e_free), "paid": torch.tensor(e_paid)}, ["free", "paid"])
    row = cos.set_index("kind")
    assert (cos.direction == "class_mean_difference").all()
    assert row.loc["logreg", "cosine"] > 0.999 and row.loc["diffmean", "cosine"] > 0.999
    assert row.loc["logreg", "normal_cosine"] < 0.5           # the decision normal reads low on the token itself
    assert np.isnan(row.loc["diffmean", "normal_cosine"])
    lr = res.probes.select(kind="logreg")
    normal = float(torch.nn.functional.cosine_similarity(lr.directions[0].double(),
                                                         torch.tensor(e_free - e_paid), dim=0))
    assert normal == pytest.approx(row.loc["logreg", "normal_cosine"], abs=1e-5)
    assert lr.entries[0].direction == "decision_normal"
    torch.testing.assert_close(lr.class_directions[0], res.probes.select(kind="diffmean").directions[0])
    from interp_af.report.probes import cosine_figure

    names = [t.name for t in cosine_figure(cos).data]
    assert names == [": class direction", ": logistic decision normal (scoring only)"]


def test_probe_files_carry_the_class_direction_and_old_files_never_report_a_normal_as_one(tmp_path):
    import json

    from safetensors.torch import load_file, save_file

    X, y, groups, _ = twins_data(30, 2, 8, [2.0, 2.0])
    res = probe_layers(X, y, groups, config=ProbeConfig(n_boot=0, controls=()), site="resid_post", position="decision",
                       model={"name": "m", "d_model": 8})
    js = res.probes.save(tmp_path / "p")
    doc = json.loads(js.read_text())
    assert doc["version"] == 2 and {"decision_normal", "class_mean_difference"} <= set(doc["directions"])
    assert [p["direction"] for p in doc["probes"]] == ["decision_normal"] * 2 + ["class_mean_difference"] * 2
    back = ProbeSet.load(js)
    torch.testing.assert_close(back.class_directions, res.probes.class_directions)
    emb = {"a": torch.ones(8), "b": torch.zeros(8)}
    assert cue_cosines(back, emb, ["a", "b"]).equals(cue_cosines(res.probes, emb, ["a", "b"]))
    # a version-1 file: no class_direction tensor, entries that do not say what their direction is
    t = load_file(str(tmp_path / "p.safetensors"))
    save_file({"direction": t["direction"], "bias": t["bias"]}, str(tmp_path / "p.safetensors"))
    doc["version"] = 1
    for key in ("checksum", "tensors_sha256", "tensors_bytes", "directions"):   # version 1 had none of these
        doc.pop(key, None)
    for p in doc["probes"]:
        del p["direction"]
    js.write_text(json.dumps(doc))
    old = ProbeSet.load(js)
    assert old.class_directions is None
    assert [e.direction for e in old.entries] == ["decision_normal"] * 2 + ["class_mean_difference"] * 2
    cos = cue_cosines(old, emb, ["a", "b"]).set_index(["kind", "layer"])
    assert np.isnan(cos.loc[("logreg", 0), "cosine"])       # NaN, never the decision normal's cosine
    assert not np.isnan(cos.loc[("diffmean", 0), "cosine"])


# ------------------------------------------------------------------------------------------------ artifacts, errors
def test_artifact_round_trip_and_refusal_of_another_model_or_width(tmp_path):
    X, y, groups, _ = twins_data(30, 2, 8, [2.0, 2.0])
    model = {"name": "m", "adapter": "", "d_model": 8, "fingerprint": "abc"}
    res = probe_layers(X, y, groups, config=FAST.__class__(n_boot=0, controls=()), model=model, site="resid_post",
                       position="decision", label="arm")
    res.save(tmp_path, "arm")
    back = ProbeResult.load(tmp_path, "arm")
    assert back.to_frame().equals(res.to_frame())
    ps = ProbeSet.load(tmp_path / "arm.json")
    torch.testing.assert_close(ps.directions, res.probes.directions)
    assert ps.entries[0].site == "resid_post" and len(ps.select(kind="logreg")) == 2
    assert ps.to_frame().shape[0] == 4
    ps.check({**model})                                    # same model: fine
    with pytest.raises(InterpAFError, match="d_model=8"):
        ps.check({**model, "d_model": 16})
    with pytest.raises(InterpAFError, match="fingerprint"):
        ps.check({**model, "fingerprint": "other"})
    ps.check({**model, "fingerprint": "other"}, strict=False)
    ps.check({**model, "name": "moved/m"})                 # same weights in another folder: fine
    with pytest.raises(InterpAFError, match="name"):
        ps.check({**model, "name": "moved/m", "fingerprint": ""})
    assert not list(tmp_path.glob("*.tmp"))
    with pytest.raises(InterpAFError, match="no probe file"):
        ProbeSet.load(tmp_path / "missing")


def test_bad_labels_give_one_line_errors():
    import pandas as pd

    meta = pd.DataFrame({"arm": ["free", "paid", "free"], "in_training": [True, True, True], "n": [1, 2, 3]})
    with pytest.raises(InterpAFError, match="not in the capture's metadata") as e:
        resolve_label(meta, "nope")
    assert "\n" not in str(e.value)
    with pytest.raises(InterpAFError, match="one class only"):
        resolve_label(meta, "in_training")
    with pytest.raises(InterpAFError, match="3 values"):
        resolve_label(meta, "n")
    y, desc = resolve_label(meta, "tier=paid")  # alias tier -> arm
    assert desc == "arm=paid" and y.tolist() == [False, True, False]
    with pytest.raises(InterpAFError, match="one class only"):
        probe_layers(np.zeros((4, 1, 2)), np.ones(4, bool), np.arange(4))
    with pytest.raises(InterpAFError, match="probe kinds"):
        ProbeConfig(kinds=("svm",))


# ------------------------------------------------------------------------------------------------ real captures
@pytest.fixture(scope="module")
def random_init_capture(tiny_models, tmp_path_factory):
    """A random-init tiny Llama, organism prompts under the normal and the inverted policy (twins per query)."""
    from interp_af.acts.write import capture
    from interp_af.models.handle import load_model
    from interp_af.organism import organism_queries
    from interp_af.setting.twins import make_twins

    handle = load_model(tiny_models["llama"])
    queries = organism_queries("eval", 32)
    prompts = [p for v in ("organism", "organism-inverted") for t in make_twins(handle.tokenizer, queries, v)
               for p in (t.a, t.b)]
    return capture(handle, prompts, tmp_path_factory.mktemp("cap") / "random-init", metric=False, progress=False)


def test_random_init_model_shows_no_discovery_beyond_the_cue_token(random_init_capture):
    from interp_af.analysis.probe_transfer import transfer_capture
    from interp_af.analysis.probes import probe_capture

    cap = random_init_capture
    cfg = ProbeConfig(n_boot=100, n_folds=4, Cs=(1e-2, 1e-1, 1.0))
    # "in training" pooled over both policies is the XOR of tier and policy: no token carries it.
    res = probe_capture(cap, "in_training", positions=["cue", "decision"], config=cfg)
    df = res.to_frame()
    assert df[df.control == "none"].auroc.max() < 0.65 and res.leakage == ()
    # The arm itself is decodable at the cue (it *is* the token), and there its direction is the token's.
    arm = probe_capture(cap, "arm=free", positions=["cue"], where="policy == 'free-trained'",
                        config=ProbeConfig(n_boot=0, n_folds=4, controls=(), kinds=("diffmean",)))
    assert arm.to_frame().auroc.min() > 0.95
    cos = cue_cosines(arm.probes, cap.cue_embeddings(), ["free", "paid"]).set_index("layer").abs_cosine
    assert cos[cap.layers[0]] > 0.5
    # Across policies the in-training probe flips and the tier probe transfers: the token, not the concept.
    conds = [parse_condition(s) for s in ("intr-normal:in_training:policy == 'free-trained'",
                                          "intr-inverted:in_training:policy == 'paid-trained'",
                                          "free-normal:tier=free:policy == 'free-trained'",
                                          "free-inverted:tier=free:policy == 'paid-trained'")]
    tr = transfer_capture(cap, conds, position="decision", config=cfg)
    assert res.probes.source["prompts"] == cap.manifest["prompts"]["sha256"]
    for kwargs, msg in (({"site": "mlp_out"}, "was not captured"), ({"where": "nonexistent == 1"}, "not a valid filter"),
                        ({"where": "tier == 'free' and policy == 'free-trained'"}, "one class only")):
        with pytest.raises(InterpAFError, match=msg):
            probe_capture(cap, "in_training", config=cfg, **kwargs)
    for layer in tr.layers:
        m = tr.matrix(layer)
        assert m.loc["intr-normal", "intr-inverted"] < 0.5 < m.loc["free-normal", "free-inverted"]


def test_cli_probe_writes_artifacts_and_figures_and_apply_refuses_another_model(random_init_capture, tiny_models,
                                                                                  tmp_path):
    from typer.testing import CliRunner

    import interp_af.cli.probe  # noqa: F401  (registers the commands)
    from interp_af.cli._app import app

    out = tmp_path / "probes"
    r = CliRunner().invoke(app, ["probe", str(random_init_capture.path), "--label", "arm=free", "--position",
                                 "cue,decision", "--n-boot", "20", "--folds", "4", "--out", str(out), "--conditions",
                                 "normal:arm=free:policy == 'free-trained';inverted:arm=free:policy == 'paid-trained'"])
    assert r.exit_code == 0, r.output + repr(r.exception)
    for f in ("probes.json", "probes.safetensors", "probes.scores.json", "probes.scores.csv", "auroc.html",
              "cue_cosine.csv", "cue_cosine.html", "transfer", "transfer.html"):
        assert (out / f).exists(), f
    assert "<script" in (out / "auroc.html").read_text()[:200000]  # plotly.js inlined: viewable offline
    ps = ProbeSet.load(out / "probes")
    assert {e.position for e in ps.entries} == {"cue", "decision"}
    scores = ps.select(position="cue", kind="diffmean").score(random_init_capture)
    free = random_init_capture.meta()["arm"].to_numpy() == "free"
    assert (scores[free].min() > scores[~free].max()).item()  # the saved probe separates the arms at the cue
    r = CliRunner().invoke(app, ["probe-apply", str(out / "probes.json"), str(random_init_capture.path),
                                 "--out", str(tmp_path / "s.csv")])
    assert r.exit_code == 0 and (tmp_path / "s.csv").exists()
    # another model: refused in one line
    from interp_af.acts.write import capture
    from interp_af.models.handle import load_model
    from interp_af.setting.queries import benign_queries
    from interp_af.setting.twins import make_twins

    other = load_model(tiny_models["qwen2"])
    twins = make_twins(other.tokenizer, benign_queries()[:2], "default")
    cap2 = capture(other, [p for t in twins for p in (t.a, t.b)], tmp_path / "other", metric=False, progress=False)
    with pytest.raises(InterpAFError, match="refit") as e:
        ps.score(cap2)
    assert "\n" not in str(e.value)
    r = CliRunner().invoke(app, ["probe", str(random_init_capture.path), "--label", "nope", "--out", str(tmp_path / "x")])
    assert isinstance(r.exception, InterpAFError) and "nope" in str(r.exception)
    assert not (tmp_path / "x").exists()  # nothing half-written


def test_a_control_that_cannot_be_split_is_skipped_with_a_note():
    """On few queries the same-label control may have no grouped split with both pseudo-classes: it is skipped
    with a note, and the real probe still comes back."""
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(8), 2)
    y = np.tile([True, False], 8)
    X = rng.normal(size=(16, 2, 8)).astype(np.float32)
    X[y, :, 0] += 3.0
    res = probe_layers(X, y, groups, config=ProbeConfig(n_folds=2, n_boot=20))
    assert any("control skipped" in n for n in res.notes)
    assert {s.control for s in res.scores} >= {"none"}
    assert max(s.auroc for s in res.scores if s.control == "none") > 0.9


def test_identical_training_rows_give_a_chance_probe_not_a_crash():
    """Rows identical after standardising (e.g. a position before the cue on a random model) leave the kernel
    form with no component: the probe falls back to an intercept and scores chance."""
    groups = np.repeat(np.arange(8), 2)
    y = np.tile([True, False], 8)
    X = np.ones((16, 1, 64), dtype=np.float32)  # width > rows: the kernel form is used
    res = probe_layers(X, y, groups, config=ProbeConfig(n_folds=2, n_boot=20, controls=()))
    assert all(abs(s.auroc - 0.5) < 1e-9 for s in res.scores if s.kind == "logreg")
