"""interp_af.setting."""
