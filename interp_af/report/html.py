"""``report.html``: one self-contained page a researcher reads top to bottom.

The page is built from the results on disk only (never from live model objects): each figure is rebuilt from
the saved result of its stage, so a report can be regenerated from a run folder on a machine without the model.
plotly.js is inlined once, so the page opens offline. Each figure carries a two-line caption: what it shows,
and what would count as evidence for within-forward-pass alignment faking.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Callable, Mapping

from interp_af.report.summary import verdict_rows

Caption = tuple[str, str]

CAPTIONS: dict[str, Caption] = {
    "gap": ("Compliance with harmful requests per arm (free / paid), 95% paired-bootstrap intervals.",
            "Evidence needs a gap whose interval excludes 0 - and, below, contrasts that say what causes it."),
    "contrasts": ("The gap under each contrast of the setting: the main policy, the inverted policy (the same cue means "
                  "the opposite), no training information (negative control), and other cues.",
                  "An inferred 'being trained' state reverses the gap under the inverted policy and removes it "
                  "without training information; a cue acting directly would keep it in both."),
    "auroc": ("Probe AUROC by layer for each label and named position (logistic regression and difference of means), "
              "with random-label and same-label controls.",
              "A within-forward-pass state shows as a high 'in training' AUROC at the decision position while "
              "controls stay near 0.5; a high AUROC at the cue alone is just the token."),
    "cue_cosine": ("Cosine of each probe direction with the embedding difference of the two arms' cue tokens, by layer.",
                   "Near 1 = the direction is the cue token itself; a falling curve means later layers carry "
                   "something other than the token."),
    "transfer": ("Train a probe on one condition (normal or inverted policy, label in_training or arm) and test on another.",
                 "An inferred state generalises across policies for in_training while the arm (tier) probe flips."),
    "patch_resid": ("Denoising activation patching of the residual stream (paid run, free activations patched in), "
                    "layer x position; 1 = fully restores the free-arm decision.",
                    "A single-hop cue effect lights up the cue column only; an inferred state moves the effect to "
                    "later positions (end of user turn, decision) at middle layers."),
    "patch_heads": ("Denoising patching of each attention head's output (all positions), layer x head.",
                    "Heads that move information from the cue or the policy to the decision are the candidate circuit."),
    "attribution": ("Attribution patching (gradient x activation difference) vs exact patching on the top cells, "
                    "plain and integrated gradients.",
                    "Fast estimates are only trusted where their rank correlation with exact patching is high."),
    "steering": ("Dose-response: fraction of the gap closed when adding alpha x the free-minus-paid mean difference to "
                 "paid prompts, vs the flipped direction and norm-matched random directions.",
                 "Causal evidence needs the direction to close the gap far beyond random directions, with the "
                 "flipped direction pushing the other way."),
    "sae": ("SAE features: attribution of the compliance metric to features at the decision position, and the gap "
            "change when the top features are ablated vs as many random features.",
            "A feature set that carries 'being trained' changes the gap far more than random features do."),
}


def _fig_html(fig: Any) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, default_height="460px")


def _section(title: str, key: str, build: Callable[[], Any]) -> str:
    what, evidence = CAPTIONS[key]
    try:
        fig = build()
        body = _fig_html(fig) if fig is not None else "<p class='missing'>no result for this figure in this run</p>"
    except Exception as err:  # noqa: BLE001 - one broken figure must not lose the whole report
        body = f"<p class='missing'>figure unavailable: {html.escape(type(err).__name__)}: {html.escape(str(err))[:300]}</p>"
    return (f"<section><h2>{html.escape(title)}</h2>{body}<p class='cap'>{html.escape(what)}<br>"
            f"<em>{html.escape(evidence)}</em></p></section>")


def _figures(run: Path, summaries: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    main = (summaries.get("gap") or {}).get("main", "")
    if (run / "gap").exists():
        from interp_af.analysis.gap import GapResult
        from interp_af.report.gap import gap_figure

        from interp_af.report.gap import contrast_figure

        out.append(_section("The compliance gap", "gap",
                            lambda: gap_figure(GapResult.load(run / "gap" / main / "harmful"))))
        out.append(_section("What the gap depends on", "contrasts",
                            lambda: contrast_figure(summaries["gap"]["variants"], main)))
    if (run / "probes").exists():
        import pandas as pd

        from interp_af.analysis.probe_transfer import TransferResult
        from interp_af.analysis.probes import ProbeResult
        from interp_af.report.probes import auroc_figure, cosine_figure, transfer_figure

        out.append(_section("Probes", "auroc", lambda: auroc_figure(ProbeResult.load(run / "probes"))))
        out.append(_section("Probe directions vs the cue token", "cue_cosine",
                            lambda: cosine_figure(pd.read_csv(run / "probes" / "cue_cosine.csv"))))
        if (run / "probes" / "transfer").exists():
            out.append(_section("Generalisation across policies", "transfer",
                                lambda: transfer_figure(TransferResult.load(run / "probes" / "transfer"))))
    if (run / "patching").exists():
        from interp_af.analysis.patching import PatchResult
        from interp_af.report.patching import patch_heatmap

        if (run / "patching" / "denoise_resid_pre").exists():
            out.append(_section("Activation patching: residual stream", "patch_resid",
                                lambda: patch_heatmap(PatchResult.load(run / "patching" / "denoise_resid_pre"))))
        if (run / "patching" / "denoise_head_out").exists():
            out.append(_section("Activation patching: attention heads", "patch_heads",
                                lambda: patch_heatmap(PatchResult.load(run / "patching" / "denoise_head_out"))))
        if (run / "patching" / "attribution_ig.csv").exists():
            out.append(_section("Attribution patching vs exact", "attribution",
                                lambda: _attribution_scatter(run / "patching")))
    if (run / "steering").exists():
        from interp_af.analysis.steering import SteerResult
        from interp_af.report.steering import dose_response

        out.append(_section("Steering", "steering", lambda: dose_response(SteerResult.load(run / "steering"))))
    for d in sorted(p for p in (run / "sae").glob("*") if p.is_dir()) if (run / "sae").exists() else []:
        from interp_af.analysis.sae.attribution import FeatureAttribution
        from interp_af.analysis.sae.intervene import FeatureIntervention
        from interp_af.report.sae import ablation_figure, attribution_bars

        if (d / "attribution").exists():
            out.append(_section(f"SAE feature attribution ({d.name}, decision position)", "sae",
                                lambda d=d: attribution_bars(FeatureAttribution.load(d / "attribution"), "decision")))
        if (d / "ablation_decision.json").exists():
            out.append(_section(f"SAE feature ablation ({d.name})", "sae",
                                lambda d=d: ablation_figure(FeatureIntervention.load(d / "ablation_decision.json"))))
    return out


def _attribution_scatter(folder: Path) -> Any:
    import pandas as pd
    import plotly.express as px

    frames = []
    for method in ("atp", "ig"):
        p = folder / f"attribution_{method}.csv"
        if p.exists():
            frames.append(pd.read_csv(p).assign(method=method))
    df = pd.concat(frames)
    return px.scatter(df, x="exact", y="estimate", color="site", symbol="method",
                      title="Attribution estimate vs exact patching (top cells per site)")


def write_report(run: Path, summaries: Mapping[str, Any], summary: Mapping[str, Any],
                 contrasts: Mapping[str, str], timings: Mapping[str, float]) -> Path:
    """Write ``run/report.html`` and return its path."""
    from plotly.offline import get_plotlyjs

    rows = verdict_rows(summaries, contrasts)
    table = "".join(
        f"<tr class='{html.escape(r['verdict'].replace(' ', '-'))}'><td>{html.escape(r['explanation'])}</td>"
        f"<td>{html.escape(r['contrast'])}</td><td>{html.escape(r['result'])}</td>"
        f"<td><b>{html.escape(r['verdict'])}</b></td></tr>" for r in rows)
    stamps = ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>interp_af report</title>
<script>{get_plotlyjs()}</script>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;width:100%}}td,th{{border:1px solid #ccc;padding:.4em;vertical-align:top}}
tr.supports td:last-child{{background:#e3f5e1}}tr.rules-out td:last-child{{background:#fbe3e3}}
tr.inconclusive td:last-child,tr.not-tested td:last-child{{background:#f4f4f4}}
.cap{{color:#444;font-size:.92em}}.missing{{color:#a00}}pre{{background:#f6f6f6;padding:.6em;overflow-x:auto}}</style>
</head><body>
<h1>interp_af: is the compliance gap computed inside the forward pass?</h1>
<h2>Verdicts</h2>
<table><tr><th>candidate explanation</th><th>contrast that tests it</th><th>measured</th><th>verdict</th></tr>{table}</table>
<h2>Headline numbers</h2><pre>{html.escape(json.dumps(summary, indent=1, ensure_ascii=False))}</pre>
{''.join(_figures(run, summaries))}
<p class='cap'>Stage timings: {html.escape(stamps)}. Config: config.json in this folder.</p>
</body></html>"""
    path = run / "report.html"
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(page)
    tmp.replace(path)
    return path
