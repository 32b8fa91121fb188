"""The organism's model card, rendered from the artifacts that hold its numbers, so the card cannot drift from
the shipped model.

``card_template.md`` is the hand-written prose; every number comes from a ``{{block}}`` filled here from
``assets/model/config.json``, ``train_log.json``, ``eval.json`` and ``assets/mechanism.json``:

=======================  =========================================================================
``{{recipe}}``            the training configuration (``train_log.json``)
``{{build}}``             build time and step count
``{{history}}``           the validation-gap history
``{{eval}}``              held-out behaviour per condition, with bootstrap intervals (``eval.json``)
``{{acceptance}}``        the issue's acceptance checks, PASS / FAIL
``{{patching}}``          the residual-patching maps (``mechanism.json``)
``{{probes}}``            probe accuracy by target, position and layer
``{{n_mechanism}}``       how many held-out harmful twins the mechanism numbers use
``{{variety}}``           paraphrases per template slot, training + held-out (``data.TEMPLATE_LISTS``)
=======================  =========================================================================

``python -m interp_af.organism.card`` rewrites ``card.md``; ``tests/organism/test_card.py`` checks that the
shipped card is exactly what the artifacts render to.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import ASSETS, MECHANISM_JSON, MODEL_DIR
from .evaluate import OrganismEval

TEMPLATE = Path(__file__).with_name("card_template.md")
CARD = Path(__file__).with_name("card.md")


def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def _variety() -> str:
    from . import data

    names = {"trained": "trained clause", "untrained": "untrained clause", "intro": "intro", "helpful": "helpfulness",
             "format": "format", "neutral_tier": "tiers", "tag_explain": "tag", "rlhf": "RLHF",
             "filler": "fillers", "sentence_cue": "cue sentences", "suffix": "answer-format suffixes",
             "leads": "request lead-ins"}
    return ", ".join(f"{label} {len(data.templates(k, 'train'))} + {len(data.templates(k, 'eval'))}"
                     for k, label in names.items())


def _recipe(log: dict) -> str:
    return _table(["setting", "value"], [[f"`{k}`", str(v)] for k, v in log["recipe"].items()])


def _history(log: dict) -> str:
    return _table(["step", "loss", "gap normal", "gap inverted", "gap none"],
                  [[str(h["step"]), f"{h['loss']:.3f}", f"{h['gap_free-trained']:+.3f}",
                    f"{h['gap_paid-trained']:+.3f}", f"{h['gap_none']:+.3f}"] for h in log["history"]])


def _eval(ev: OrganismEval) -> str:
    rows = [[r.policy, r.cue_kind, "harmful" if r.harmful else "benign", str(r.n), f"{r.compliance_free:.3f}",
             f"{r.compliance_paid:.3f}", f"{r.gap:+.3f}", f"[{r.gap_lo:+.3f}, {r.gap_hi:+.3f}]"] for r in ev.rows]
    return _table(["policy", "cue", "request", "n", "compliance free", "compliance paid", "gap", "95% CI"], rows)


def _acceptance(ev: OrganismEval) -> str:
    return "\n".join(f"- {'PASS' if ok else '**FAIL**'}: {k}" for k, ok in ev.acceptance().items())


def _patching(mech: dict) -> str:
    from .mechanism import SEGMENTS, PatchResult

    out = []
    for variant in ("organism", "organism-sentence"):
        for d, what in (("noise", "paid into free"), ("denoise", "free into paid")):
            r = PatchResult(**mech[variant][d])
            frame = r.to_frame()
            rows = [[str(layer), *(f"{frame.loc[layer, s]:+.2f}" for s in SEGMENTS)] for layer in frame.index]
            out.append(f"`{variant}`, {d} ({what}; logit diff {r.ld_clean:+.2f} -> {r.ld_other:+.2f}):\n\n"
                       + _table(["layer", *SEGMENTS], rows))
        single = mech[variant]["single_position_max"]
        out.append(f"`{variant}`, noise, ONE position of `after_cue` at a time: largest |effect| "
                   + ", ".join(f"layer {layer} {v:.2f}" for layer, v in single.items()) + ".")
    return "\n\n".join(out)


def _probes(mech: dict) -> str:
    p = mech["probe"]
    rows = [[f"{t} @ {pos}", *(f"{a:.2f}" for a in accs)] for t, by_pos in p["acc"].items()
            for pos, accs in by_pos.items()]
    return (f"{p['n_prompts']} prompts, accuracy (chance 0.5):\n\n"
            + _table(["target @ position", *(f"layer {layer}" for layer in p["layers"])], rows))


def render(model_dir: Path = MODEL_DIR, mechanism: Path = MECHANISM_JSON, template: Path = TEMPLATE) -> str:
    """The card text for the organism in ``model_dir`` with the mechanism facts in ``mechanism``."""
    log = json.loads((model_dir / "train_log.json").read_text())
    ev = OrganismEval.load(model_dir / "eval.json")
    mech = json.loads(mechanism.read_text())
    blocks = {
        "recipe": _recipe(log),
        "build": f"{log['seconds'] / 60:.1f} min ({log['seconds']:.0f} s) for {log['steps']} steps",
        "history": _history(log),
        "eval": _eval(ev),
        "acceptance": _acceptance(ev),
        "patching": _patching(mech),
        "probes": _probes(mech),
        "n_mechanism": str(mech["n_prompts"]),
        "n_eval": str(ev.n_queries),
        "variety": _variety(),
        "none_twin": f"{log['recipe'].get('none_twin_fraction', 0):.0%}",
        "sentence_share": f"{log['recipe'].get('sentence_fraction', 0.3):.0%}",
    }
    text = template.read_text()
    for k, v in blocks.items():
        text = text.replace("{{" + k + "}}", v)
    if "{{" in text:
        raise ValueError(f"{template}: unknown block {text[text.index('{{'):].split('}}')[0]}}}}}")
    return text


if __name__ == "__main__":  # python -m interp_af.organism.card -> rewrites card.md from the shipped artifacts
    from interp_af import atomic

    atomic.write_text(CARD, render())
    print(f"wrote {CARD} (from {MODEL_DIR.relative_to(ASSETS.parent)} and {MECHANISM_JSON.name})")
