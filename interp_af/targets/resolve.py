"""One place that turns ``[model]`` + ``[setting]`` into what every analysis runs on.

:func:`resolve` returns a :class:`ResolvedTarget`: the model handle (loaded on first use, once), the
requests, the rendered twins of the main variant and of each contrast, the decision tokens, and each
variant's declared role. Every command and every stage of a study gets its prompts from here, so "which
model, which requests, which variant" is answered once, with one set of defaults.

Defaults come from the target (:mod:`interp_af.targets.target`): an empty ``[model] path`` is the default
target, an empty ``[setting] variant`` its main variant, unset ``contrasts`` its contrasts, an empty
``queries`` its request set. :meth:`ResolvedTarget.configs` gives the tables with those filled in (what a run
folder records, so that spelling a default out and leaving it out are the same study).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from interp_af.errors import InterpAFError
from interp_af.setting.types import Query, RenderedPrompt, Twin
from interp_af.targets.config import ModelConfig, SettingConfig
from interp_af.targets.target import Target, target_for


class ResolvedTarget:
    """A study subject, ready to run: see the module docstring. Build it with :func:`resolve`."""

    def __init__(self, target: Target, model: ModelConfig, setting: SettingConfig, *, progress: bool = False):
        self.target = target
        self.progress = progress
        path = model.path or target.name
        self.model_config = dataclasses.replace(model, path=str(path))
        variant = setting.variant or target.variant
        contrasts = target.contrasts if setting.contrasts is None else setting.contrasts
        self.setting_config = dataclasses.replace(setting, variant=variant, contrasts=tuple(contrasts))
        self._handle: Any = target.handle
        if self._handle is not None:
            from interp_af.models.wrap import as_handle

            self._handle = as_handle(self._handle)
        self._tokenizer: Any = None
        self._queries: list[Query] | None = None
        self._twins: dict[str, list[Twin]] = {}
        self._variants: dict[str, Any] = {}
        self.notes: list[str] = []      # what a user should know about the resolution (capped limits, ...)

    # -- what it is -----------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.target.name

    @property
    def main(self) -> str:
        """The main variant's name."""
        return self.setting_config.variant

    @property
    def contrasts(self) -> tuple[str, ...]:
        return tuple(v for v in self.setting_config.contrasts or () if v != self.main)

    @property
    def variants(self) -> tuple[str, ...]:
        """The main variant first, then the contrasts."""
        return (self.main, *self.contrasts)

    def configs(self) -> tuple[ModelConfig, SettingConfig]:
        """``[model]`` and ``[setting]`` with the target's defaults filled in."""
        return self.model_config, self.setting_config

    def variant(self, name: str) -> Any:
        """The variant object (``casing`` applied when set)."""
        if name not in self._variants:
            from interp_af.setting.prompts import get_variant

            opts = {"casing": self.setting_config.casing} if self.setting_config.casing else {}
            self._variants[name] = get_variant(name, **opts)
        return self._variants[name]

    def use_variant(self, variant: Any) -> None:
        """Render the variant called ``variant.name`` with this object (e.g. a prompt file with a user template)."""
        self._variants[variant.name] = variant
        self._twins.pop(variant.name, None)

    def role(self, name: str) -> str:
        from interp_af.setting.prompts import variant_role

        return variant_role(self.variant(name))

    def check_variants(self) -> None:
        """Every variant exists (and takes the options given): raises one line naming the first that does not."""
        for v in self.variants:
            self.variant(v)

    # -- the model ------------------------------------------------------------------------------------------
    @property
    def handle(self) -> Any:
        """The model handle (loaded on first access; the same object afterwards)."""
        if self._handle is None:
            from interp_af.models.handle import load_model
            from interp_af.models.hub import loading_bars

            m = self.model_config
            target = self.target.model()
            with loading_bars(self.progress):
                self._handle = load_model(target, backend=m.backend, adapter=m.adapter or None, dtype=m.dtype,
                                          device=m.device, device_map=m.device_map or None, remote=m.remote,
                                          trust_remote_code=m.trust_remote_code)
            self._handle.aliases = tuple(dict.fromkeys((self.target.name, *self.target.aliases)))
        return self._handle

    @property
    def loaded(self) -> bool:
        return self._handle is not None

    @property
    def tokenizer(self) -> Any:
        """The tokenizer (without loading the weights when the model is not loaded yet)."""
        if self._handle is not None:
            return self._handle.tokenizer
        if self._tokenizer is None:
            from interp_af.models.hub import load_tokenizer, resolve_model

            self._tokenizer = load_tokenizer(resolve_model(self.target.model()),
                                             self.model_config.trust_remote_code)
        return self._tokenizer

    @property
    def dt(self) -> Any:
        """The decision tokens (accept / reject first divergent tokens after their shared prefix)."""
        from interp_af.models.metric import decision_tokens

        return decision_tokens(self.tokenizer)

    # -- the prompts ----------------------------------------------------------------------------------------
    @property
    def queries(self) -> list[Query]:
        """The requests: ``[setting] queries`` (a file) or the target's default set, first ``limit``, plus the
        benign control set when ``benign``."""
        if self._queries is None:
            s = self.setting_config
            if s.queries:
                from interp_af.setting.queries import benign_queries, load_queries

                qs = load_queries(s.queries, limit=s.limit, column=s.column)
                if len(qs) < s.limit:
                    self.notes.append(f"[setting] limit {s.limit} is more than the {len(qs)} requests in "
                                      f"{s.queries}; using all {len(qs)}")
                qs = qs + (benign_queries() if s.benign else [])
            else:
                limit = s.limit
                if self.target.max_queries is not None and limit > self.target.max_queries:
                    self.notes.append(f"[setting] limit {limit} is more than the {self.target.max_queries} requests "
                                      f"of target {self.name}; using all {self.target.max_queries}")
                    limit = self.target.max_queries
                qs = self.target.queries(limit, s.benign)
            self._queries = qs
        return self._queries

    def use_queries(self, queries: list[Query]) -> None:
        """Study ``queries`` instead of the configured set (e.g. an SAE's training requests); clears the twins."""
        self._queries = list(queries)
        self._twins.clear()

    def twins(self, variant: str | None = None, *, harmful: bool | None = None,
              aligned: bool = False, limit: int = 0) -> list[Twin]:
        """Twins of ``variant`` (default: the main one). ``harmful``: True = harmful requests only, False =
        benign only; ``aligned``: only twins that align token for token (patching needs them); ``limit``: the
        first N after filtering (0 = all)."""
        v = variant or self.main
        if v not in self._twins:
            from interp_af.setting.twins import make_twins

            self._twins[v] = make_twins(self.tokenizer, self.queries, self.variant(v), progress=self.progress)
        tw = self._twins[v]
        if harmful is not None:
            tw = [t for t in tw if bool(t.a.meta.get("harmful", True)) == harmful]
        if aligned:
            tw = [t for t in tw if t.aligned]
        return tw[:limit] if limit else tw

    def prompts(self, variant: str | None = None) -> list[RenderedPrompt]:
        """Every request in every arm of ``variant`` (query-major): what capture and probes read."""
        from interp_af.setting.twins import render_arms

        return render_arms(self.tokenizer, self.queries, self.variant(variant or self.main), progress=self.progress)

    def patch_twins(self, n: int) -> list[Twin]:
        """The first ``n`` aligned harmful twins of the main variant (0 = all), or one line saying why none."""
        tw = self.twins(harmful=True, aligned=True, limit=n)
        if not tw:
            raise InterpAFError(f"no harmful twin of variant {self.main!r} aligns token for token under this "
                                "tokenizer; pick a variant whose cue values tokenize to the same length "
                                "(interp-af prompts shows why)")
        return tw

    def describe(self) -> str:
        m = self.model_config
        return (f"{self.name} ({m.path}, {m.backend}{', adapter ' + m.adapter if m.adapter else ''}); variant "
                f"{self.main}; contrasts {', '.join(self.contrasts) or 'none'}")


def resolve(model: Any = None, setting: SettingConfig | None = None, *, model_config: ModelConfig | None = None,
            progress: bool = False, **setting_options: Any) -> ResolvedTarget:
    """The study subject for ``model`` (a :class:`ModelConfig`, a target name, a path, a Hub id, or a model
    object: ``HookedTransformer``, ``TransformerBridge``, nnsight ``LanguageModel`` or a handle) and
    ``setting`` (or its fields as keywords: ``variant=``, ``queries=``, ``limit=``, ...)."""
    if isinstance(model, ModelConfig):
        model_config, model = model, model.path
    mc = model_config or ModelConfig()
    target = target_for(model if model is not None else mc.path)
    if target.handle is None and isinstance(model, (str, Path)) and model:
        mc = dataclasses.replace(mc, path=str(model))
    sc = setting or SettingConfig()
    if setting_options:
        sc = dataclasses.replace(sc, **setting_options)
    return ResolvedTarget(target, mc, sc, progress=progress)

