"""The two tables that say what a study runs on: ``[model]`` (which weights, how to run them) and ``[setting]``
(which prompt variants and which requests). Shared by the TOML, the Python API and every CLI command that
loads a model, so an option has one name and one default everywhere.

Empty values mean "the target's own": ``path = ""`` is the default target (see ``interp-af targets``),
``variant = ""`` the target's main variant, ``contrasts`` left out its default contrasts, ``queries = ""`` its
default request set. :func:`interp_af.targets.resolve` fills them in, and the run folder records the filled-in
values, so writing a default out explicitly and leaving it out give the same study.
"""

from __future__ import annotations

from dataclasses import dataclass

from interp_af.options import option, validate

BACKENDS = ("auto", "tl", "nnsight")
DTYPES = ("float32", "bfloat16", "float16", "float64", "fp32", "bf16", "fp16")
CASINGS = ("", "lower", "title", "upper")


@dataclass(frozen=True)
class ModelConfig:
    """Which model to load and how."""

    path: str = option("", "A target name (see `interp-af targets`), a local Hugging Face folder or a Hub id; "
                           "'' = the default target.")
    backend: str = option("auto", "auto (nnsight for forward passes and gradients, TransformerLens's fast path for "
                                  "exact patch grids), tl (TransformerLens) or nnsight.", choices=BACKENDS)
    adapter: str = option("", "A PEFT (LoRA) adapter folder or Hub id, merged into the weights; '' = none.")
    dtype: str = option("float32", "Model dtype.", choices=DTYPES)
    device: str = option("cpu", "cpu, cuda, cuda:1, ... (with device_map: where the inputs go).")
    device_map: str = option("", "'auto' spreads a large model over several GPUs (accelerate); '' = one device.")
    remote: bool = option(False, "nnsight (or auto) only: run the traces on NDIF (needs an NDIF API key and network).")
    trust_remote_code: bool = option(False, "Allow the model repository's own Python code (off: safer).")

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True)
class SettingConfig:
    """Which prompts: the main variant, its contrasts, and the requests they wrap."""

    variant: str = option("", "The main prompt variant (see `interp-af prompts --list-variants`); '' = the "
                              "target's.")
    contrasts: tuple[str, ...] | None = option(None, "Contrast variants measured beside the main one (each "
                                                     "declares its role); unset = the target's.")
    queries: str = option("", "A CSV / JSONL / text file of requests; '' = the target's default set.")
    column: str = option("goal", "CSV column / JSON key holding the requests.")
    limit: int = option(100, "Use the first N requests (a limit above the set's size is capped, with a note).",
                        min=1)
    benign: bool = option(True, "Also run the built-in benign control requests.")
    casing: str = option("", "Tag-value casing: lower (true/false), title (True/False), upper; '' = the "
                             "variant's own.", choices=CASINGS)

    def __post_init__(self) -> None:
        validate(self)
