"""Plugins: packages that add prompt variants, targets and CLI commands without the core importing them.

A plugin is a function listed under the entry-point group ``interp_af.plugins`` in a package's metadata
(``pyproject.toml``: ``[project.entry-points."interp_af.plugins"]``). :func:`load_plugins` calls each one
once, the first time a registry (variants, targets) is asked for something; the function registers what it
brings through the public registries (:func:`interp_af.setting.prompts.register_variant`,
:func:`interp_af.targets.register_target`). CLI sub-apps come the same way from the group ``interp_af.cli``
(a ``typer.Typer`` object per entry; the entry's name is the command).

This is how the project's own built-in targets (the trained model and the zoo of ground-truth models) plug in: the rest of the package
never imports them, so a study of a real model never depends on them, and a third-party package can ship its
own target the same way.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from interp_af.errors import InterpAFError

PLUGIN_GROUP = "interp_af.plugins"
CLI_GROUP = "interp_af.cli"

_loaded = False
_loading = False


def load_plugins() -> None:
    """Run every registered plugin function once (idempotent; re-entrant calls during loading are no-ops)."""
    global _loaded, _loading
    if _loaded or _loading:
        return
    _loading = True
    try:
        for ep in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
            try:
                fn = ep.load()
            except ImportError as err:
                raise InterpAFError(f"plugin {ep.name!r} ({ep.value}) cannot be imported ({err}); reinstall the "
                                    "package that provides it (./setup.sh for interp_af's own)") from None
            fn()
        _loaded = True
    finally:
        _loading = False


def cli_apps() -> list[tuple[str, Any]]:
    """``(command name, typer app)`` for every CLI plugin."""
    out = []
    for ep in sorted(entry_points(group=CLI_GROUP), key=lambda e: e.name):
        try:
            out.append((ep.name, ep.load()))
        except ImportError:
            continue  # a broken plugin must not take the whole command line down; load_plugins() reports it
    return out
