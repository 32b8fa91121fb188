"""interp_af.report."""
