"""The zoo as study targets: ``zoo-null``, ``zoo-direct-cue``, ``zoo-planted-direction`` (alias ``zoo-planted``)
and ``zoo-rated-only``, registered through the entry point ``interp_af.plugins: zoo`` (see
:mod:`interp_af.plugins`), so the core never imports the zoo.

Each target is the generic real-model study (main variant ``default``; contrasts ``no-training-info``,
``inverted-cue``, ``three-tiers``; AdvBench requests plus the benign control set), on a zoo model built on
first use into the cache (``$INTERP_AF_CACHE/zoo/v<version>/<name>``, default ``~/.cache/interp_af``), under a
file lock so that two processes never build the same folder at once; a folder built by this zoo version is
reused as it is. So ``interp-af run`` with ``[model] path = "zoo-direct-cue"`` runs the whole study on a model
whose verdict table is known in advance (``interp_af/zoo/truth.py`` ``EXPECTED_VERDICTS``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from pathlib import Path
from typing import Iterator

PREFIX = "zoo-"
ALIASES = {"planted-direction": ("zoo-planted",)}


def zoo_cache() -> Path:
    """Where the zoo targets' models live: ``<interp_af cache>/zoo/v<ZOO_VERSION>``."""
    from interp_af.setting.tokenizer import cache_dir
    from interp_af.zoo.wiring import ZOO_VERSION

    return cache_dir() / "zoo" / f"v{ZOO_VERSION}"


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)   # released by the kernel even if the process dies
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _built(folder: Path, name: str) -> bool:
    from interp_af.zoo.wiring import ZOO_VERSION

    try:
        card = json.loads((folder / "zoo.json").read_text())
    except (OSError, ValueError):
        return False
    return card.get("name") == name and card.get("version") == ZOO_VERSION and (folder / "model.safetensors").exists()


def model_path(name: str, root: Path | None = None) -> Path:
    """Zoo model ``name``'s folder in the cache, built first if it is not there yet."""
    from interp_af.zoo import build_model

    folder = (root or zoo_cache()) / name
    if _built(folder, name):
        return folder
    with _lock(folder.parent / f".{name}.lock"):
        if not _built(folder, name):   # another process may have built it while this one waited
            build_model(name, folder)
    return folder


def register(root: Path | None = None) -> None:
    """Register one target per zoo model (what the entry point calls); ``root``: build (or find) the models
    there instead of the cache (tests point it at a zoo they built)."""
    from interp_af.targets import Target, register_target
    from interp_af.zoo import NAMES, module

    for name in NAMES:
        doc = (module(name).__doc__ or name).strip().splitlines()[0]
        register_target(Target(
            name=PREFIX + name, description=f"zoo (ground truth known): {doc}",
            model=lambda name=name: model_path(name, root), aliases=ALIASES.get(name, ())), overwrite=True)
