"""interp_af.capture."""
