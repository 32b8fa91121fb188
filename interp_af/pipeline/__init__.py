"""interp_af.pipeline: the `run` command's stage runner and the stages it calls."""
