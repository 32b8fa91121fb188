"""The small vocabularies the analyses accept (metric kinds, probe kinds, patching directions, ...), in a module
with no heavy imports, so that configs and the command line can validate values without loading torch."""

METRICS: tuple[str, ...] = ("forward", "generate")           # the gap: first divergent token / decode and check
KINDS: tuple[str, ...] = ("logreg", "diffmean")              # probe kinds
CONTROLS: tuple[str, ...] = ("random", "same_label")         # probe controls
DIRECTIONS: tuple[str, ...] = ("denoise", "noise")           # activation patching
METHODS: tuple[str, ...] = ("atp", "ig")                     # attribution patching
STEER_SITES: tuple[str, ...] = ("resid_pre", "resid_post", "attn_out", "mlp_out")
STEER_OPS: tuple[str, ...] = ("add", "project_out")
SAE_METHODS: tuple[str, ...] = ("gxa", "ig")                 # SAE feature attribution
SAE_MODES: tuple[str, ...] = ("zero", "mean")                # SAE feature ablation
