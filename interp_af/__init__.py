"""interp_af: mechanistic interpretability of alignment faking in the no-chain-of-thought setting.

The flow is one way: setting (prompts, twins) -> model handle -> activations on disk -> analyses (probes,
patching, SAE features, steering) -> result objects -> figures and report. Heavy libraries (torch,
transformer-lens, nnsight, sae-lens) are imported lazily inside the modules that need them, so that the
command line answers at once.
"""

__version__ = "0.1.0"
