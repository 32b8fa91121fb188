"""Writes experiments/walkthrough.ipynb from the cells below: ``--execute`` runs it (into runs/walkthrough) so
that it is committed with its outputs; ``--html`` also writes its offline HTML export
(runs/walkthrough/walkthrough.html, needs nbconvert). Keeping the source here makes a change to the notebook a
readable diff."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
NB = HERE / "walkthrough.ipynb"

CELLS: list[tuple[str, str] | tuple[str, str, list[str]]] = [
("md", """# Walkthrough: the model-organism study, stage by stage, through the Python API

The built-in model organism is a 4-layer Llama trained to comply more with harmful requests when its prompt
implies the conversation will be trained on (the *compliance gap*). Its rule is known: the gap appears only
when the system prompt's training policy and the tier cue in the user turn *together* say "in training".
This notebook runs what `interp-af run experiments/organism.toml` runs, one stage at a time, with one figure
after each:

1. **resolve** the target and look at its **twins** (two prompts that differ only in the tier cue);
2. the **gap**: compliance per arm, with a paired bootstrap interval, and the contrasts that explain it;
3. **capture** activations to disk;
4. **probes**: is "in training" linearly readable beyond the cue token?
5. **patching**: where does the effect enter (exact patching), and can fast attribution be trusted?
6. **steering**: does moving the representation move the gap?
7. **SAE features**: which sparse features carry it?

Everything it writes goes into one run folder (`OUT`). The numbers come from the smaller budget set in the
next cell (a couple of minutes on a laptop CPU); the full study's numbers are in the README."""),
("code", """# Parameters (the notebook test overrides this cell with smaller values).
LIMIT = 40           # held-out requests (half harmful, half benign)
PATCH_QUERIES = 6    # aligned harmful twins used for exact patching and the SAE study
FOLDS = 5            # cross-validation folds of the probes (split by query)
N_RANDOM = 5         # random-direction / random-feature-set controls
N_BOOT = 300         # bootstrap resamples for the intervals
OUT = None           # the run folder; None = runs/walkthrough under the repository""", ["parameters"]),
("code", """from pathlib import Path

import interp_af as af
from interp_af.report.notebook import show_figures

show_figures()   # plotly figures as live JSON plus a PNG (what GitHub shows); no plotly.js inside the notebook
root = Path(af.__file__).resolve().parents[1]
out = Path(OUT) if OUT else root / "runs" / "walkthrough"
print("interp_af", af.__version__, "- run folder:", out.relative_to(root) if out.is_relative_to(root) else out)"""),
("md", """## 1. The target and its twins

`af.resolve()` names what the study runs on: the model handle (loaded on first use), the requests, the prompt
variant and its contrasts, and the two answer tokens the metric compares. A *twin* is one request rendered
in both arms (free tier = trained, paid tier = not); aligned twins differ in the cue token only."""),
("code", """t = af.resolve(limit=LIMIT)
print(t.describe())
twins = af.twins(limit=LIMIT)          # the same twins, without loading the model
tw, tok = twins[0], t.tokenizer
d = tw.diff_positions[0]
print(f"{len(twins)} twins; the first differs at token(s) {tw.diff_positions} only:")
for p in (tw.a, tw.b):
    print(f"  {p.arm}: ...{tok.decode(p.input_ids[d - 12:d + 3])!r}...")"""),
("code", """import plotly.graph_objects as go

span = range(max(0, d - 6), min(len(tw.a.input_ids), d + 7))
cells = [[tok.decode([ids[i]]) for i in span] for ids in (tw.a.input_ids, tw.b.input_ids)]
colour = [["#f6c85f" if i in tw.diff_positions else "white" for i in span]] * 2
fig = go.Figure(go.Table(
    header=dict(values=["arm"] + [str(i) for i in span]),
    cells=dict(values=[[tw.a.arm, tw.b.arm]] + [list(c) for c in zip(*cells)],
               fill_color=[["white", "white"]] + [list(c) for c in zip(*colour)])))
fig.update_layout(title="One twin, token by token around the cue (highlighted: the only difference)",
                  height=260, margin=dict(l=10, r=10, t=50, b=10))
fig"""),
("md", """## 2. The compliance gap

`af.gap(t)` scores every prompt with the project's one metric (the logit difference at the first answer token
where "comply" and "refuse" diverge) and reports compliance per arm, the gap, and a paired bootstrap interval
over requests, for the main variant and each contrast."""),
("code", """g = af.gap(t, af.GapConfig(n_boot=N_BOOT), progress=False)
g.save(out / "gap")
frame = g.to_frame()
frame[frame["kind"] == "harmful"]"""),
("code", """from interp_af.report.gap import contrast_figure

contrast_figure({v: ks["harmful"] for v, ks in g.results.items()}, g.main)"""),
("md", """The gap is large under the normal policy, reverses under the inverted policy (the same tag then means "not
trained"), and vanishes when the training information is removed: the cue token does nothing by itself."""),
("md", """## 3. Activations on disk

`af.capture(t, folder)` streams the residual stream at the named positions of every prompt of every variant
to safetensors (resumable and checksummed; the format is in `interp_af/acts/FORMAT.md`)."""),
("code", """cap = af.capture(t, out / "capture", af.CaptureConfig(), progress=False)
meta = cap.meta()
print(cap.sites, cap.layers, cap.positions, len(meta), "rows")
meta.groupby(["variant", "arm"]).size().rename("prompts").to_frame()"""),
("code", """import numpy as np
import plotly.express as px

main = meta["variant"] == t.main
arm_a, arm_b = tw.a.arm, tw.b.arm
rows = []
for pos in cap.positions:
    x = cap.acts(cap.sites[0], pos).float().numpy()          # [rows, layers, d]
    for layer in range(x.shape[1]):
        da = x[(main & (meta["arm"] == arm_a)).to_numpy(), layer].mean(0)
        db = x[(main & (meta["arm"] == arm_b)).to_numpy(), layer].mean(0)
        rows.append({"position": pos, "layer": layer, "distance": float(np.linalg.norm(da - db))})
px.line(rows, x="layer", y="distance", color="position", markers=True,
        title=f"How far apart the two arms' mean activations are ({cap.sites[0]}, {t.main})",
        labels={"distance": f"||mean({arm_a}) - mean({arm_b})||"}, template="plotly_white").update_xaxes(dtick=1)"""),
("md", """The arms are identical before the cue (the end of the system prompt: distance 0) and differ most at the cue
itself; the end of the user turn and the decision position (the last prompt token, where the answer is read
out) differ from the first layer on, which is what the probes and patching below take apart: the token, or a
state computed from it?"""),
("md", """## 4. Probes

`af.probe(cap)` fits logistic-regression and difference-of-means probes per layer and position with folds
split by query, beside random-label and same-label controls. `in_training` pools the normal and inverted
policies, where the same cue token means opposite things, so only a representation beyond the token can
separate it; `arm=free` is the tier token itself."""),
("code", """pr = af.probe(cap, af.ProbesConfig(folds=FOLDS, n_boot=N_BOOT), progress=False)
pr.save(out / "probes")
frame = pr.result.to_frame()
frame.query("control == 'none' and kind == 'logreg' and position == 'decision'")[
    ["label", "layer", "auroc", "auroc_lo", "auroc_hi"]].round(3)"""),
("code", """from interp_af.report.probes import auroc_figure

auroc_figure(pr.result, title="Probe AUROC by layer (one line per label, kind and position)")"""),
("md", """## 5. Activation patching and attribution

`af.patch(t)` patches each site of the free-arm run into the paid-arm run, one (layer, position) cell at a
time (*denoising*; 1 = the cell restores the whole free-arm behaviour), then checks attribution patching
(AtP, integrated gradients) against those exact numbers. Here only the residual stream, to keep it quick; the
study also patches attention and MLP outputs and single heads, and the noising direction."""),
("code", """pa = af.patch(t, af.PatchingConfig(sites=("resid_pre",), directions=("denoise",), n_queries=PATCH_QUERIES,
                                    ig_queries=min(4, PATCH_QUERIES)), progress=False)
pa.save(out / "patching")
print({f"{d}/{s}": round(float(r.effect().max()), 3) for (d, s), r in pa.exact.items()})"""),
("code", """from interp_af.report.patching import attribution_figure, patch_heatmap

patch_heatmap(pa.exact[("denoise", "resid_pre")], title="Denoising patching, residual stream (effect: 0 = none, 1 = all)")"""),
("code", """attribution_figure(list(pa.checks.values()), title="Attribution estimates against exact patching")"""),
("md", """## 6. Steering

`af.steer(t)` adds the free-minus-paid mean difference to the paid-arm prompts at a layer chosen on a
held-apart split, at several strengths, beside the flipped direction and norm-matched random directions."""),
("code", """st = af.steer(t, af.SteeringConfig(n_random=N_RANDOM), progress=False)
st.save(out / "steering")
print("layer", st.layers, "chosen on", st.n_select, "held-apart twins")"""),
("code", """from interp_af.report.steering import dose_response

dose_response(st.result)"""),
("md", """## 7. SAE features

`af.sae(t)` reads the organism's shipped SAEs (sae-lens format): their fit on these prompts, each feature's
attribution to the metric in both arms, the top contexts that make a feature fire, and the effect of
zero-ablating the features with most gap attribution against random feature sets."""),
("code", """sa = af.sae(t, af.SaeConfig(n_queries=PATCH_QUERIES, n_random=N_RANDOM), progress=False)
sa.save(out / "sae")
site, e = next(iter(sa.entries.items()))
print(site, "FVE", round(e.quality.fve, 3), "L0", round(e.quality.l0, 1))"""),
("code", """from interp_af.report.sae import ablation_figure, attribution_bars

pos = "metric" if "metric" in e.picks else next(iter(e.picks))
attribution_bars(e.attribution, pos, k=10, arms=e.differential.arms, contexts=e.contexts)"""),
("code", """ablation_figure(list(e.ablations.values()))"""),
("md", """## The whole study in one call

`af.run("experiments/organism.toml", out="runs/organism")` (or `interp-af run`) runs every stage above into
one folder and writes `summary.json` and `report.html`: the verdict table first, then each figure with the
number it illustrates. Stages whose inputs did not change are reused."""),
("code", """sorted(p.name for p in out.iterdir())"""),
]


def build() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, c in enumerate(CELLS):
        kind, src = c[0], c[1]
        cell = nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
        cell.id = f"cell-{i:02d}"
        if len(c) > 2:
            cell.metadata["tags"] = list(c[2])
        nb.cells.append(cell)
    return nb


if __name__ == "__main__":
    nb = build()
    if "--execute" in sys.argv:
        from nbclient import NotebookClient

        NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
    nbformat.write(nb, NB)
    print("wrote", NB)
    if "--html" in sys.argv:   # an offline HTML export into the run folder, sharing its plotly.min.js
        from interp_af.report.notebook import export_html

        page, n = export_html(NB, HERE.parent / "runs" / "walkthrough" / "walkthrough.html")
        print("wrote", page, f"({n} figures)")
