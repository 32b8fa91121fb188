"""The SAE stage says how to read an SAE's fit: a model with dequantised weights gets the warning that SAEs
trained on the original checkpoint fit it worse, and an SAE trained by ``sae train`` carries its training
record (tokens, held-out FVE and L0) into the summary and the report."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

from interp_af.analysis.sae.study import SAEStudy, StudyConfig, run_study
from interp_af.stages.sae import fit_notes, report, summarize


def _target(handle, note: str = ""):
    return SimpleNamespace(target=SimpleNamespace(weights_note=note), handle=handle)


def test_notes_name_dequantised_weights_and_the_training_record(sae1, sae_handle, trained):
    info = json.loads((trained[1] / "training.json").read_text())
    notes = fit_notes(_target(sae_handle, "dequantised Q4_1 weights, not the original checkpoint"), [sae1])
    assert len(notes) == 2
    assert notes[0].startswith("model weights: dequantised Q4_1 weights") and "fit these activations worse" in notes[0]
    assert f"{info['n_train_tokens']} tokens" in notes[1] and f"FVE {info['holdout']['fve']:.3f}" in notes[1]
    assert f"L0 {info['holdout']['l0']:.1f}" in notes[1] and str(trained[1] / "training.json") in notes[1]


def test_original_weights_and_a_foreign_sae_give_no_notes(sae1, sae_handle, tmp_path):
    foreign = dataclasses.replace(sae1, source=str(tmp_path))   # a folder without a training record
    assert fit_notes(_target(sae_handle), [foreign]) == ()


def test_notes_reach_the_summary_and_the_report(sae1, sae_handle, sae_prompts, sae_dt, tmp_path):
    cfg = StudyConfig(positions=("decision", "metric"), ablate_positions=(), k=2, n_random=0, batch_size=12)
    study = run_study(sae_handle, [sae1], sae_prompts, sae_dt, cfg)
    notes = fit_notes(_target(sae_handle, "dequantised Q4_1 weights, not the original checkpoint"), [sae1])
    study = dataclasses.replace(study, fit_notes=notes)
    study.save(tmp_path)
    back = SAEStudy.load(tmp_path)
    s = summarize(back)
    assert s.fit_notes == notes and s.l0 > 0 and 0 < s.fve <= 1
    contrib = report(back, s)
    assert contrib.sections[0].notes == notes
    fit = next(f for f in contrib.findings if f.question == "does the SAE fit these prompts?")
    assert f"L0 {s.l0:.1f}" in fit.measure and "dequantised" in fit.note
