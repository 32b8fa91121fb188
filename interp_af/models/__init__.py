"""interp_af.models."""
