"""The layering rule, checked on the source: no module imports one above it, and the core never mentions the
project's plugins (the trained organism and the zoo reach the core only through entry points).

Layers, bottom to top (ARCHITECTURE.md): utilities (errors, options, plugins, atomic, owned, checks, checksums,
textio, testing) -> setting -> models ->
targets -> acts -> analysis -> report -> stages -> pipeline -> cli and the root API."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "interp_af"
UTILITIES = ("errors", "options", "plugins", "testing", "atomic", "owned", "checks", "checksums", "textio")
RANK = {**{u: 0 for u in UTILITIES}, "setting": 1, "models": 2, "targets": 3, "acts": 4, "analysis": 5,
        "report": 6, "stages": 7, "pipeline": 8, "cli": 9, "__init__": 9}
PLUGINS = ("organism", "zoo")


def _unit(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0].removesuffix(".py")


def _core_modules() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py") if _unit(p) not in PLUGINS)


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every interp_af module ``path`` imports (module level or inside functions), with its line."""
    tree = ast.parse(path.read_text())
    out = []
    pkg_parts = path.relative_to(PKG.parent).with_suffix("").parts
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("interp_af")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = pkg_parts[:-node.level] if path.name != "__init__.py" else pkg_parts[:len(pkg_parts) - node.level]
                mod = ".".join(base + ((node.module,) if node.module else ()))
            else:
                mod = node.module or ""
            if mod == "interp_af":   # from interp_af import atomic, owned: the submodules named
                out += [(node.lineno, f"interp_af.{a.name}") for a in node.names]
            elif mod.startswith("interp_af"):
                out.append((node.lineno, mod))
    return out


def _target_unit(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] == "__version__":
        return "errors"   # the version string: a constant every layer may read
    return parts[1] if len(parts) > 1 else "__init__"


@pytest.mark.parametrize("path", _core_modules(), ids=lambda p: str(p.relative_to(PKG)))
def test_no_import_runs_up_the_layering(path):
    me = _unit(path)
    assert me in RANK, f"{path}: top-level unit {me!r} is not in the layering; add it to ARCHITECTURE.md and here"
    for line, mod in _imports(path):
        them = _target_unit(mod)
        assert them not in PLUGINS, f"{path}:{line} imports the plugin {mod}; reach it through interp_af.plugins"
        assert RANK[them] <= RANK[me], f"{path}:{line} ({me}) imports {mod} ({them}), a layer above it"


def test_the_core_never_mentions_a_plugin():
    docs = [p for p in PKG.rglob("*.md") if _unit(p) not in PLUGINS]
    hits = [f"{p.relative_to(PKG)}:{i}" for p in [*_core_modules(), *docs]
            for i, line in enumerate(p.read_text().splitlines(), 1) if "organism" in line.lower()]
    assert not hits, f"core modules name the organism plugin: {hits}"


def test_plugins_are_found_through_entry_points():
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group="interp_af.plugins")}
    assert "organism" in names, "reinstall (./setup.sh): the organism plugin is not registered"
    from interp_af.targets import default_target, find_target

    assert find_target("organism") is not None and default_target().name == "organism"
