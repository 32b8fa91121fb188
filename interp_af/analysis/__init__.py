"""interp_af.analysis."""
