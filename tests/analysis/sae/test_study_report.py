"""The end-to-end study (quality, differential, attribution, contexts, ablation + figures) and the CLI."""

from __future__ import annotations

import json
import sys

from interp_af.analysis.sae.study import StudyConfig, run_study


def test_study_writes_results_and_figures(sae0, sae1, sae_handle, sae_prompts, sae_dt, tmp_path):
    from interp_af.analysis.sae.study import SAEStudy
    from interp_af.stages.sae import report, summarize

    cfg = StudyConfig(positions=("cue", "decision", "metric"), ablate_positions=("metric",), k=3, n_random=2,
                      batch_size=12, top_n=6)
    study = run_study(sae_handle, [sae1], sae_prompts, sae_dt, cfg)
    study.save(tmp_path)
    d = tmp_path / "resid_post.1"
    for name in ("quality.json", "differential.json", "attribution/attribution.safetensors", "context.csv",
                 "acts/acts.safetensors", "ablation_metric.json", "entry.json"):
        assert (d / name).exists(), name
    entry = json.loads((tmp_path / "summary.json").read_text())["saes"]["resid_post.1"]
    assert entry["quality"]["splice_err_max_abs"] <= 1e-5
    abl = entry["positions"]["metric"]["ablation"]
    assert abl["n_random"] == 2 and len(entry["positions"]["metric"]["top_gap_features"]) <= 3
    assert study.summary()["n_prompts"] == len(sae_prompts)
    # the saved study loads back to the same numbers, and the report figures are drawn from it
    again = SAEStudy.load(tmp_path)
    assert again.summary() == study.summary()
    keys = [b.key for s in report(again, summarize(again)).sections for b in s.figures]
    assert keys == ["sae_attribution_resid_post.1", "sae_ablation_resid_post.1"]


def _cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """Run ``interp-af *args`` in-process (the wrapper that turns InterpAFError into one line + exit 2)."""
    import interp_af.cli.sae  # noqa: F401  (registers itself; the lead adds it to interp_af/cli/__init__)
    from interp_af.cli import app

    monkeypatch.setattr(sys, "argv", ["interp-af", *args])
    code = 0
    try:
        app()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_info_and_one_line_errors(trained, tiny_models, monkeypatch, capsys):
    code, out, err = _cli(monkeypatch, capsys, "sae", "info", str(trained[1]), "--model", str(tiny_models["llama"]))
    assert code == 0, err
    assert "resid_post.1" in out and "fits" in out
    code, out, err = _cli(monkeypatch, capsys, "sae", "info", str(trained[1]), "--model", str(tiny_models["llama"]),
                          "--layer", "9", "--site", "resid_post")
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "layer 9 is outside" in errors[0]
    code, out, err = _cli(monkeypatch, capsys, "sae", "info", "gemma-scope-2b-pt-res-canonical", "--sae-id",
                          "layer_3/width_16k/canonical")
    assert code == 2 and "not on disk" in err and "gemma-2-2b" in out
