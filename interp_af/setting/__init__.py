"""The no-CoT helpful-only setting: queries, the prompt and its variants, rendering, and free/paid twins.

>>> from interp_af.setting import load_queries, make_twins, summarize_twins
>>> twins = make_twins(tokenizer, load_queries(limit=100), "default")   # doctest: +SKIP
>>> print(summarize_twins(twins, tokenizer))                             # doctest: +SKIP

Modules: :mod:`~interp_af.setting.types` (data types), :mod:`~interp_af.setting.queries` (query sets),
:mod:`~interp_af.setting.prompts` (the prompt's clauses, the Variant protocol and registry),
:mod:`~interp_af.setting.variants` (built-in contrasts), :mod:`~interp_af.setting.custom` (user prompt files),
:mod:`~interp_af.setting.render` (chat template -> token ids + named positions),
:mod:`~interp_af.setting.twins` (pairing arms, alignment, summaries), :mod:`~interp_af.setting.tokenizer`
(default tokenizer), :mod:`~interp_af.setting.demo` (the setting's end-to-end job).
"""

from interp_af.setting.custom import CustomVariant, load_prompt_file
from interp_af.setting.demo import SettingSummary, build_twins, summarize_setting
from interp_af.setting.prompts import (
    ArmSpec, PromptVariant, Variant, get_variant, list_variants, register_variant, system_prompt, user_turn,
)
from interp_af.setting.queries import benign_queries, load_queries
from interp_af.setting.render import render
from interp_af.setting.twins import TwinSummary, make_twins, pair_twin, render_arms, summarize_twins
from interp_af.setting.types import ACCEPT, PREFILL, REJECT, Conversation, Query, RenderedPrompt, Twin

__all__ = [
    "ACCEPT", "REJECT", "PREFILL", "Query", "Conversation", "RenderedPrompt", "Twin", "Variant", "PromptVariant",
    "ArmSpec", "CustomVariant", "get_variant", "list_variants", "register_variant", "system_prompt", "user_turn",
    "load_prompt_file", "load_queries", "benign_queries", "render", "make_twins", "pair_twin", "render_arms",
    "TwinSummary", "summarize_twins", "SettingSummary", "build_twins", "summarize_setting",
]
