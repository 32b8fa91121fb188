"""The zoo measured: each ground-truth model through the toolkit's analyses, on both backends.

For every zoo model (:mod:`interp_af.zoo`) and backend: the gap of every declared variant/arm pair
(compliance and mean logit difference, paired-bootstrap intervals), the declared direction's steering
controls (20 norm-matched random directions, as a distribution), the planted vector's recovery, and
(nnsight only; the numbers are backend-independent) probes at the decision position: ``in_training`` AUROC
under the default policy, its transfer to ``inverted-cue``, and the cue-embedding cosine of the class
direction beside the logistic decision normal's. Compare each line with the model's declared truth
(``interp_af/zoo/README.md``).

    .venv/bin/python benchmarks/zoo.py [--queries 16] [--out runs/zoo]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=16)
    ap.add_argument("--out", default="runs/zoo")
    args = ap.parse_args()

    import torch

    from interp_af.analysis.gap import compute_gap
    from interp_af.analysis.probe_transfer import Condition, cue_cosines, transfer_capture
    from interp_af.analysis.probes import ProbeConfig, probe_capture
    from interp_af.analysis.steering import cue_embedding_cosine, mean_difference, steer
    from interp_af.acts.write import capture
    from interp_af.models.handle import load_model
    from interp_af.setting.queries import load_queries
    from interp_af.setting.twins import make_twins
    from interp_af.zoo import NAMES, build_zoo, truth
    from interp_af.zoo.planted import load_planted

    out = Path(args.out)
    paths = build_zoo(out / "models")
    qs = load_queries(limit=args.queries)
    for name in NAMES:
        t = truth(name)
        print(f"\n== {name}: {t.mechanism}")
        for backend in ("tl", "nnsight"):
            h = load_model(paths[name], backend=backend)
            for g in t.gaps:
                r = compute_gap(h, make_twins(h.tokenizer, qs, g.variant, arms=g.arms), n_boot=1000, progress=False)
                print(f"{name} {backend} gap {g.variant} {g.arms[0]}-{g.arms[1]}: compliance {r.gap:+.2f} "
                      f"[{r.gap_ci[0]:+.2f}, {r.gap_ci[1]:+.2f}], logit {r.logit_diff_gap:+.3f} "
                      f"[{r.logit_diff_gap_ci[0]:+.3f}, {r.logit_diff_gap_ci[1]:+.3f}] "
                      f"(arms {r.mean_logit_diff[g.arms[0]]:+.3f} / {r.mean_logit_diff[g.arms[1]]:+.3f}; "
                      f"declared {g.compliance_gap:+.0f}, {g.logit_gap:+.1f})")
            tws = make_twins(h.tokenizer, qs[:8], "default")
            site, layer = (t.direction.site, t.direction.layer) if t.direction else ("resid_post", 0)
            d = mean_difference(h, tws, layer=layer, site=site)
            line = f"{name} {backend} direction {site}.{layer}: |mean diff| {float(d.norm()):.4g}"
            if float(d.norm()) > 0:
                line += f", cue cosine {cue_embedding_cosine(h, tws, d):+.3f}"
            if name == "planted-direction":
                v, _ = load_planted(paths[name])
                line += f", cosine with planted v {float(torch.nn.functional.cosine_similarity(d, v, dim=0)):.4f}"
            print(line)
            if float(d.norm()) > 0:
                s = steer(h, tws, d, layers=[layer], site=site, alphas=(-1.0, 1.0), n_random=20,
                          progress=False).controls_summary()
                print(f"{name} {backend} steering alpha {s.alpha:g} on {s.steered_arm}: closed {s.closed:+.3f} "
                      f"[{s.closed_lo:+.3f}, {s.closed_hi:+.3f}]; random (n={s.n_random}) median "
                      f"{s.random_median:+.3f}, p95 {s.random_p95:+.3f}, |p95| {s.random_abs_p95:.3f}; percentile "
                      f"{s.percentile:.0f}; flipped {s.flipped_closed:+.3f} (on the other arm "
                      f"{s.flipped_closed_other_arm:+.3f}); gap {s.gap_logit:+.4f} logits vs noise floor "
                      f"{s.noise_floor_logit:.4f} ({'above' if s.above_noise_floor else 'NOT above'})")
        h = load_model(paths[name], backend="nnsight")
        prompts = [p for v in ("default", "inverted-cue") for tw in make_twins(h.tokenizer, qs, v) for p in (tw.a, tw.b)]
        cap = capture(h, prompts, out / "captures" / name, positions=("cue", "decision"), metric=False,
                      progress=False, overwrite=True)
        cfg = ProbeConfig(n_folds=4, n_boot=200)
        res = probe_capture(cap, "in_training", positions=["decision"], where="variant == 'default'", config=cfg)
        df = res.to_frame()
        real = df[(df.control == "none")].set_index(["kind", "layer"]).auroc
        ctl = df[df.control != "none"].auroc.max()
        cos = cue_cosines(res.probes, cap.cue_embeddings(), ["free", "paid"]).query("kind == 'logreg'").set_index("layer")
        tr = transfer_capture(cap, [Condition("default", "in_training", "variant == 'default'"),
                                    Condition("inverted", "in_training", "variant == 'inverted-cue'")],
                              position="decision", config=ProbeConfig(n_folds=4, n_boot=0, controls=()))
        for layer in cap.layers:
            m = tr.matrix(layer)
            print(f"{name} probe decision L{layer}: in_training AUROC logreg {real[('logreg', layer)]:.3f} diffmean "
                  f"{real[('diffmean', layer)]:.3f} (controls max {ctl:.3f}); transfer default->inverted "
                  f"{m.loc['default', 'inverted']:.3f}; cue cosine class direction {cos.loc[layer, 'cosine']:+.3f}, "
                  f"logistic normal {cos.loc[layer, 'normal_cosine']:+.3f}")


if __name__ == "__main__":
    main()
