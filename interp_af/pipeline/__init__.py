"""interp_af.pipeline: a whole study from one config: the TOML schema (:mod:`.config`), the stage runner with
its fingerprints (:mod:`.runner`) and ``run_study`` (:mod:`.study`)."""
