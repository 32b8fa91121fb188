"""interp_af.organism."""
