"""Loading sparse autoencoders (SAEs) through sae-lens, and checking that one fits the model it is used on.

An SAE reads one activation of one model: a *site* (residual stream, attention or MLP output, per-head ``z``)
at one layer. sae-lens records that as ``metadata.hook_name`` in TransformerLens's naming
(``blocks.12.hook_resid_post``) and the model as ``metadata.model_name``. Three sources are accepted:

- a local directory in sae-lens format (``cfg.json`` + ``sae_weights.safetensors``), read by ``SAE.load_from_disk``;
- a directory in EleutherAI sparsify's format (``cfg.json`` with ``k``/``num_latents`` + ``sae.safetensors``, in a
  folder named after the module, e.g. ``layers.6``), read by sae-lens's own ``sparsify_disk_loader``;
- a sae-lens *release* and SAE id (``gemma-scope-2b-pt-res-canonical``, ``layer_20/width_16k/canonical``). The
  release catalogue ships inside sae-lens and reads offline, so we can always say which model and hook a release
  is for; the weights come from the Hugging Face cache, and a release not on disk fails at once with one line
  (no network retry loop) unless ``download=True``.

:func:`check_fit` compares an SAE with a model handle (width vs ``d_model``, hook -> canonical site and layer
present in the model, model name) and raises one line naming what does not fit.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Float
from torch import Tensor

from interp_af.errors import InterpAFError
from interp_af.models.sites import SITES, SiteKey

if TYPE_CHECKING:  # sae_lens takes seconds to import: only at call time
    from sae_lens import SAE

# canonical site -> TransformerLens hook suffix (the names sae-lens records in metadata.hook_name)
_TL_HOOK: dict[str, str] = {
    "resid_pre": "hook_resid_pre",
    "resid_post": "hook_resid_post",
    "attn_out": "hook_attn_out",
    "mlp_out": "hook_mlp_out",
    "head_out": "attn.hook_z",
}
# other spellings of the same activations: TransformerBridge canonical names, and HF module paths
# (sparsify names its hookpoints after modules: the output of decoder layer L is the residual stream after L)
_HOOK_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"^blocks\.(\d+)\.hook_resid_pre$", "resid_pre"),
    (r"^blocks\.(\d+)\.hook_resid_post$", "resid_post"),
    (r"^blocks\.(\d+)\.hook_attn_out$", "attn_out"),
    (r"^blocks\.(\d+)\.hook_mlp_out$", "mlp_out"),
    (r"^blocks\.(\d+)\.attn\.hook_z$", "head_out"),
    (r"^blocks\.(\d+)\.hook_in$", "resid_pre"),
    (r"^blocks\.(\d+)\.hook_out$", "resid_post"),
    (r"^blocks\.(\d+)\.attn\.hook_out$", "attn_out"),
    (r"^blocks\.(\d+)\.mlp\.hook_out$", "mlp_out"),
    (r"^(?:model\.)?layers[._](\d+)$", "resid_post"),
    (r"^transformer\.h\.(\d+)$", "resid_post"),
    (r"^(?:model\.)?layers[._](\d+)\.mlp$", "mlp_out"),
    (r"^(?:model\.)?layers[._](\d+)\.self_attn$", "attn_out"),
)


def site_to_hook(key: SiteKey) -> str:
    """Canonical site -> the TransformerLens hook name sae-lens uses (``blocks.L.hook_resid_post``)."""
    if key.site not in _TL_HOOK:
        raise InterpAFError(f"site {key.site!r} is unknown; use one of {', '.join(SITES)}")
    return f"blocks.{key.layer}.{_TL_HOOK[key.site]}"


def hook_to_site(hook_name: str) -> SiteKey:
    """An SAE's hook name (TL, TransformerBridge or HF-module spelling) -> canonical :class:`SiteKey`."""
    for pattern, site in _HOOK_PATTERNS:
        m = re.match(pattern, hook_name)
        if m:
            return SiteKey(site, int(m.group(1)))
    raise InterpAFError(
        f"SAE hook {hook_name!r} is not a site interp_af can read (one of {', '.join(SITES)}, e.g. "
        "'blocks.6.hook_resid_post'); set metadata.hook_name in its cfg.json or pass site=/layer= explicitly"
    )


@dataclass(frozen=True)
class LoadedSAE:
    """A sae-lens SAE plus where it reads: ``site`` (canonical, with layer), the original ``hook_name``, the
    model it was trained on, and where it came from (``fmt``: "sae-lens", "sparsify" or "release")."""

    sae: Any  # sae_lens.SAE (typed loosely: sae_lens is imported lazily)
    site: SiteKey
    hook_name: str
    model_name: str | None
    source: str
    fmt: str

    @property
    def d_in(self) -> int:
        return int(self.sae.cfg.d_in)

    @property
    def d_sae(self) -> int:
        return int(self.sae.cfg.d_sae)

    @property
    def W_dec(self) -> Float[Tensor, "d_sae d_in"]:
        return self.sae.W_dec

    def encode(self, x: Float[Tensor, "... d_in"]) -> Float[Tensor, "... d_sae"]:
        """Feature activations: exactly ``sae.encode`` (in the SAE's dtype/device, returned as float32)."""
        f = self.sae.encode(x.to(device=self.sae.W_dec.device, dtype=self.sae.W_dec.dtype))
        return f.float()

    def decode(self, f: Float[Tensor, "... d_sae"]) -> Float[Tensor, "... d_in"]:
        return self.sae.decode(f.to(device=self.sae.W_dec.device, dtype=self.sae.W_dec.dtype)).float()

    def decode_vjp(self, f: Float[Tensor, "... d_sae"], g: Float[Tensor, "... d_in"]) -> Float[Tensor, "... d_sae"]:
        """``g`` pulled back through ``decode`` at ``f``: dM/df given dM/dx. Through autograd rather than
        ``g @ W_dec.T`` because some decoders rescale by the decoder norm or normalise their output."""
        with torch.enable_grad():
            leaf = f.detach().to(device=self.W_dec.device, dtype=self.W_dec.dtype).requires_grad_(True)
            (self.sae.decode(leaf) * g.to(device=self.W_dec.device, dtype=self.W_dec.dtype)).sum().backward()
        return leaf.grad.float()

    def directions(self, features: Tensor) -> Float[Tensor, "k d_in"]:
        """What adding 1 to each feature adds to the activation (the effective decoder rows)."""
        one_hot = torch.zeros(len(features), self.d_sae, device=self.W_dec.device, dtype=self.W_dec.dtype)
        one_hot[torch.arange(len(features)), features.to(self.W_dec.device)] = 1
        with torch.no_grad():
            return (self.sae.decode(one_hot) - self.sae.decode(torch.zeros_like(one_hot))).float()

    def describe(self) -> str:
        return (f"{self.source} [{self.fmt}] {self.sae.cfg.architecture()} d_in={self.d_in} d_sae={self.d_sae} "
                f"at {self.site} ({self.hook_name}) for model {self.model_name or '?'}")


def _freeze(sae: Any) -> Any:
    """Inference use only: no parameter gradients (attribution takes gradients w.r.t. activations)."""
    sae.eval()
    for p in sae.parameters():
        p.requires_grad_(False)
    return sae


def _wrap(sae: Any, source: str, fmt: str, site: SiteKey | None, hook_name: str | None) -> LoadedSAE:
    meta = sae.cfg.metadata
    hook = hook_name or meta.hook_name
    if site is None:
        if not hook:
            raise InterpAFError(f"SAE {source} does not say which hook it reads (no metadata.hook_name); "
                                "pass site= and layer= (CLI: --site/--layer)")
        site = hook_to_site(hook)
    return LoadedSAE(_freeze(sae), site, hook or site_to_hook(site), meta.model_name, source, fmt)


def _is_sparsify_dir(path: Path) -> bool:
    return (path / "sae.safetensors").exists() and not (path / "sae_weights.safetensors").exists()


def _sparsify_loader(path: str | Path, device: str = "cpu", cfg_overrides: dict[str, Any] | None = None,
                     ) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """sae-lens's sparsify converter, fixed. Why: sae-lens 6.54's ``sparsify_disk_loader`` transposes ``W_dec``,
    which sparsify stores as ``[num_latents, d_in]`` already (the load then fails on a shape mismatch), and sets
    ``apply_b_dec_to_input = not normalize_decoder`` while sparsify's ``SparseCoder.encode`` always subtracts
    ``b_dec`` from the input of an autoencoder. We reuse its config parsing and build the state dict right."""
    from safetensors.torch import load_file
    from sae_lens.loading.pretrained_sae_loaders import get_sparsify_config_from_disk

    cfg = get_sparsify_config_from_disk(path, device, cfg_overrides)
    raw = json.loads((Path(path) / "cfg.json").read_text())
    cfg["apply_b_dec_to_input"] = not raw.get("transcode", False)
    w = load_file(str(Path(path) / "sae.safetensors"), device=device)
    W_enc = w["W_enc"] if "W_enc" in w else w["encoder.weight"].T                       # [d_in, d_sae]
    W_dec = w["W_dec"] if w["W_dec"].shape[0] == cfg["d_sae"] else w["W_dec"].T          # [d_sae, d_in]
    b_enc = w.get("b_enc", w.get("encoder.bias", torch.zeros(cfg["d_sae"], dtype=W_dec.dtype)))
    b_dec = w.get("b_dec", torch.zeros(cfg["d_in"], dtype=W_dec.dtype))
    dt = getattr(torch, str(cfg.get("dtype", "float32")).replace("torch.", ""))
    state = {k: v.to(device=device, dtype=dt).contiguous()
             for k, v in {"W_enc": W_enc, "b_enc": b_enc, "W_dec": W_dec, "b_dec": b_dec}.items()}
    return cfg, state


def _load_dir(path: Path, device: str, dtype: str) -> tuple[Any, str]:
    from sae_lens import SAE

    cfg_file = path / "cfg.json"
    if not cfg_file.exists():
        raise InterpAFError(f"SAE directory {path} has no cfg.json; point at a folder in sae-lens format "
                            "(cfg.json + sae_weights.safetensors) or sparsify format (cfg.json + sae.safetensors)")
    try:
        json.loads(cfg_file.read_text())
    except json.JSONDecodeError as err:
        raise InterpAFError(f"SAE config {cfg_file} is not valid JSON ({err.msg} at line {err.lineno}); "
                            "re-save the SAE") from None
    if _is_sparsify_dir(path):
        try:
            return SAE.load_from_disk(path, device=device, dtype=dtype, converter=_sparsify_loader), "sparsify"
        except (KeyError, ValueError) as err:
            raise InterpAFError(f"sparsify SAE {path} could not be read by sae-lens ({err}); name the folder after "
                                "its module (e.g. layers.6) and keep cfg.json + sae.safetensors") from None
    if not (path / "sae_weights.safetensors").exists():
        raise InterpAFError(f"SAE weights file {path / 'sae_weights.safetensors'} is missing; copy the weights "
                            "beside cfg.json (sae-lens format) or re-save with sae.save_model(dir)")
    try:
        return SAE.load_from_disk(path, device=device, dtype=dtype), "sae-lens"
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InterpAFError(f"SAE {path} could not be loaded by sae-lens ({msg}); check cfg.json against "
                            "sae_weights.safetensors (d_in, d_sae, architecture)") from None


@dataclass(frozen=True)
class ReleaseInfo:
    """What sae-lens's catalogue says about a release (read offline): model, repo and, parsed from the SAE id
    and release name, the site and layer when they can be inferred."""

    release: str
    sae_id: str | None
    model: str
    repo_id: str
    path: str | None
    site: str | None
    layer: int | None

    def describe(self) -> str:
        where = f"{self.site or 'site ?'} layer {self.layer if self.layer is not None else '?'}"
        return f"release {self.release!r} id {self.sae_id!r} (for model {self.model}, {where}; repo {self.repo_id})"


def _guess_site(release: str, sae_id: str) -> tuple[str | None, int | None]:
    text = f"{release} {sae_id}".lower()
    for pattern, site in _HOOK_PATTERNS:
        m = re.search(pattern.strip("^$"), sae_id)
        if m:
            return site, int(m.group(1))
    m = re.search(r"layer[_.]?(\d+)", sae_id) or re.search(r"(?:^|/)l(\d+)[rma]", sae_id)
    layer = int(m.group(1)) if m else None
    if re.search(r"(-|_)att|lxa|(^|/)l\d+a", text):
        site = "attn_out"
    elif re.search(r"(-|_)mlp|lxm|(^|/)l\d+m", text):
        site = "mlp_out"
    elif re.search(r"res|lxr|(^|/)l\d+r", text):
        site = "resid_post"
    else:
        site = None
    return site, layer


def release_info(release: str, sae_id: str | None = None) -> ReleaseInfo:
    """Look ``release`` (and ``sae_id``) up in sae-lens's catalogue (offline). Unknown names -> one line with
    the closest known names."""
    from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory

    directory = get_pretrained_saes_directory()
    if release not in directory:
        close = difflib.get_close_matches(release, list(directory), n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}" if close else ""
        raise InterpAFError(f"SAE {release!r} is neither a directory on disk nor a sae-lens release{hint}")
    lookup = directory[release]
    if sae_id is not None and sae_id not in lookup.saes_map:
        ids = list(lookup.saes_map)
        close = difflib.get_close_matches(sae_id, ids, n=3, cutoff=0.3) or ids[:3]
        raise InterpAFError(f"SAE id {sae_id!r} is not in release {release!r} ({len(ids)} ids); e.g. {', '.join(close)}")
    site, layer = _guess_site(release, sae_id or "")
    return ReleaseInfo(release, sae_id, lookup.model, lookup.repo_id,
                       lookup.saes_map.get(sae_id) if sae_id else None, site, layer)


def _load_release(release: str, sae_id: str | None, device: str, dtype: str, download: bool) -> Any:
    import huggingface_hub.constants as hf_constants
    from sae_lens import SAE

    info = release_info(release, sae_id)
    if sae_id is None:
        raise InterpAFError(f"release {release!r} (model {info.model}) needs an SAE id (CLI: --sae-id); "
                            f"e.g. {_first_ids(release)}")
    was_offline = hf_constants.HF_HUB_OFFLINE
    # offline unless asked: a missing release must fail at once, not after ~23 s of network retries
    hf_constants.HF_HUB_OFFLINE = was_offline or not download
    try:
        return SAE.from_pretrained(release, sae_id, device=device, dtype=dtype)
    except Exception as err:  # huggingface_hub raises several types (LocalEntryNotFound, OfflineModeIsEnabled, OSError)
        how = "rerun with download=True (CLI: --download) on a machine with network, or " if not download else ""
        raise InterpAFError(
            f"SAE weights of {info.describe()} are not on disk ({type(err).__name__}); {how}download "
            f"{info.repo_id}/{info.path} yourself and pass the local folder"
        ) from None
    finally:
        hf_constants.HF_HUB_OFFLINE = was_offline


def _first_ids(release: str) -> str:
    from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory

    return ", ".join(list(get_pretrained_saes_directory()[release].saes_map)[:3])


def as_sae(obj: Any, *, site: str | None = None, layer: int | None = None) -> LoadedSAE:
    """A :class:`LoadedSAE` for ``obj``: itself when it is one; a ``sae_lens`` SAE object of any architecture
    (standard, TopK, JumpReLU, ...) wrapped with the site its ``cfg.metadata.hook_name`` names (or ``site``/
    ``layer``); a path or release id loaded with :func:`load_sae`."""
    if isinstance(obj, LoadedSAE):
        return obj
    if isinstance(obj, (str, Path)):
        return load_sae(obj, site=site, layer=layer)
    if not (hasattr(obj, "encode") and hasattr(obj, "decode") and hasattr(getattr(obj, "cfg", None), "d_sae")):
        raise InterpAFError(f"cannot use a {type(obj).__name__} as an SAE; pass a sae_lens SAE object, a folder "
                            "in sae-lens or sparsify format, or a sae-lens release id")
    override = SiteKey(site, layer) if site is not None and layer is not None else None
    return _wrap(obj, f"<{type(obj).__name__} object>", "object", override,
                 site_to_hook(override) if override else None)


def load_sae(source: str | Path, *, sae_id: str | None = None, device: str = "cpu", dtype: str = "float32",
             site: str | None = None, layer: int | None = None, handle: Any = None,
             allow_model_mismatch: bool = False, download: bool = False) -> LoadedSAE:
    """Load an SAE from a sae-lens directory, a sparsify directory, or a sae-lens release + ``sae_id``.

    ``site``/``layer`` override the hook recorded in the SAE. With ``handle``, :func:`check_fit` runs and raises
    on any misfit (width, site/layer, model name unless ``allow_model_mismatch``).
    """
    path = Path(source)
    override = SiteKey(site, layer) if site is not None and layer is not None else None
    if (site is None) != (layer is None):
        raise InterpAFError("pass both site= and layer= (CLI: --site/--layer) or neither")
    if override is not None and override.site not in SITES:
        raise InterpAFError(f"site {site!r} is unknown; use one of {', '.join(SITES)}")
    if path.is_dir():
        sae, fmt = _load_dir(path, device, dtype)
        loaded = _wrap(sae, str(path), fmt, override, site_to_hook(override) if override else None)
    elif path.exists() or "/" in str(source) or str(source).startswith((".", "~")):
        raise InterpAFError(f"SAE path {source} does not exist or is not a directory; pass the folder holding "
                            "cfg.json and the weights (or a sae-lens release name with sae_id=)")
    else:
        sae = _load_release(str(source), sae_id, device, dtype, download)
        loaded = _wrap(sae, f"{source}/{sae_id}", "release", override, site_to_hook(override) if override else None)
    if handle is not None:
        check_fit(loaded, handle, allow_model_mismatch=allow_model_mismatch)
    return loaded


def _norm_name(name: str | None) -> str:
    if not name:
        return ""
    return Path(str(name).rstrip("/")).name.lower().replace("_", "-")


def handle_names(handle: Any) -> set[str]:
    """Normalised names a model goes by: its name as loaded, its folder's name, and the aliases of the target
    it was resolved from (``handle.aliases``, set by :mod:`interp_af.targets`), so that an SAE whose
    ``model_name`` is a target's name fits however the model was reached."""
    names = {_norm_name(getattr(handle, "name", None)), _norm_name(getattr(handle, "path", None))}
    names |= {_norm_name(a) for a in getattr(handle, "aliases", ()) or ()}
    return names - {""}


def fit_problems(loaded: LoadedSAE, handle: Any, *, allow_model_mismatch: bool = False) -> list[str]:
    """Everything that does not fit between ``loaded`` and ``handle`` (empty list = fits)."""
    problems: list[str] = []
    key = loaded.site
    sites = tuple(handle.sites()) if hasattr(handle, "sites") else SITES
    if key.site not in sites:
        problems.append(f"site {key.site} is not one this model has ({', '.join(sites)})")
    if not 0 <= key.layer < int(handle.n_layers):
        problems.append(f"layer {key.layer} is outside the model's layers 0..{int(handle.n_layers) - 1}")
    width = int(handle.n_heads) * int(handle.d_head) if key.site == "head_out" else int(handle.d_model)
    if loaded.d_in != width:
        problems.append(f"SAE width d_in={loaded.d_in} != the model's {key.site} width {width}")
    if not allow_model_mismatch and loaded.model_name:
        names = handle_names(handle)
        if names and _norm_name(loaded.model_name) not in names:
            problems.append(f"SAE was trained on model {loaded.model_name!r}, not {getattr(handle, 'name', '?')!r} "
                            "(pass allow_model_mismatch=True / --allow-model-mismatch if it transfers)")
    return problems


def check_fit(loaded: LoadedSAE, handle: Any, *, allow_model_mismatch: bool = False) -> None:
    """Raise :class:`InterpAFError` with one line listing what does not fit (see :func:`fit_problems`)."""
    problems = fit_problems(loaded, handle, allow_model_mismatch=allow_model_mismatch)
    if problems:
        raise InterpAFError(f"SAE {loaded.source} does not fit the model: {'; '.join(problems)}")


def sae_device_dtype(loaded: LoadedSAE) -> tuple[torch.device, torch.dtype]:
    return loaded.W_dec.device, loaded.W_dec.dtype


def sae_dirs(root: str | Path) -> list[Path]:
    """The SAE folders (holding ``cfg.json``) directly inside ``root``, in (site, layer) order, e.g. the SAEs a
    target ships as ``<root>/<site>.<layer>/``."""
    root = Path(root)
    found = [p for p in root.glob("*") if (p / "cfg.json").exists()] if root.is_dir() else []
    if not found:
        raise InterpAFError(f"no SAEs in {root}; train them with `interp-af sae train --out {root}`")

    def key(p: Path) -> tuple[str, int]:
        site, _, layer = p.name.rpartition(".")
        return (site, int(layer)) if layer.isdigit() else (p.name, -1)

    return sorted(found, key=key)
