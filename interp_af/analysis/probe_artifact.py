"""Probe artifacts on disk: a stack of linear probes as two plain files, readable without this package.

``<name>.safetensors`` holds ``direction [K, d_model]`` (float32) and ``bias [K]``; probe ``k`` scores an
activation ``x`` (raw, as captured) as ``x . direction[k] + bias[k]`` (``> 0`` = the label's positive class).
It also holds ``class_direction [K, d_model]``: the mean of the positive class minus the mean of the negative
one over the same training rows. The two differ for logistic-regression probes: their ``direction`` is the
*decision normal* (the weight fitted on standardised features, mapped back as ``w / sd``), right for scoring
and wrong for geometry; every cosine and every steering vector uses ``class_direction``. Each entry names what
its ``direction`` is (``"decision_normal"`` or ``"class_mean_difference"``).
``<name>.json`` holds, in the same order, one entry per probe (layer, site, position, label, kind, chosen C,
cross-validated metrics) and the *identity of the model* the probes came from (name, adapter, width, layer
count, weights fingerprint, from the capture's manifest), plus the capture's path and prompt hash.

Loading a probe against a capture of another model, or of another width, is refused with a one-line error:
a direction is only meaningful in the residual basis it was fitted in. See ``probes/README.md`` for the format.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from interp_af.errors import InterpAFError

FORMAT = "interp_af.probes"
VERSION = 2                       # 2: class_direction beside direction; entries say which direction they hold
DECISION_NORMAL = "decision_normal"              # logistic weight mapped back to raw units: scores rows
CLASS_MEAN_DIFFERENCE = "class_mean_difference"  # mean(class 1) - mean(class 0): geometry and steering
DIRECTION_OF_KIND = {"logreg": DECISION_NORMAL, "diffmean": CLASS_MEAN_DIFFERENCE}


@dataclass(frozen=True)
class ProbeEntry:
    """What one stacked probe is: where it reads, what it separates, how well (cross-validated)."""

    layer: int
    site: str
    position: str
    label: str
    kind: str                      # "logreg" | "diffmean"
    C: float = float("nan")        # chosen regularisation (logreg); NaN for diffmean
    metrics: Mapping[str, float] = field(default_factory=dict)   # auroc, auroc_lo, auroc_hi, accuracy, ...
    direction: str = ""            # what ``direction`` holds: "decision_normal" (logreg) | "class_mean_difference"

    def __post_init__(self) -> None:
        if not self.direction:   # files of version 1 do not say: it follows from the kind
            object.__setattr__(self, "direction", DIRECTION_OF_KIND.get(self.kind, ""))


@dataclass(frozen=True)
class ProbeSet:
    """``K`` linear probes of one model: ``directions [K, d]`` (what scores: see each entry's ``direction``),
    ``biases [K]``, ``entries`` (K), ``model`` identity, and ``class_directions [K, d]`` (the class mean
    difference of each probe's training rows: what geometry uses; None for files of version 1)."""

    directions: Float[Tensor, "K d"]
    biases: Float[Tensor, " K"]
    entries: tuple[ProbeEntry, ...]
    model: Mapping[str, Any]               # the capture manifest's model identity
    source: Mapping[str, Any] = field(default_factory=dict)   # capture path, prompts hash, config (informative)
    class_directions: Float[Tensor, "K d"] | None = None

    def class_direction(self, k: int) -> Tensor | None:
        """Probe ``k``'s class direction: the stored one, else (version-1 files) its ``direction`` when that is a
        class mean difference, else None (a decision normal is never passed off as a class direction)."""
        if self.class_directions is not None:
            return self.class_directions[k]
        return self.directions[k] if self.entries[k].direction == CLASS_MEAN_DIFFERENCE else None

    def __len__(self) -> int:
        return len(self.entries)

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame([{**{k: v for k, v in asdict(e).items() if k != "metrics"}, **dict(e.metrics)} for e in self.entries])

    def select(self, *, layer: int | None = None, position: str | None = None, kind: str | None = None,
               site: str | None = None) -> "ProbeSet":
        """The probes matching every given field (same order)."""
        keep = [i for i, e in enumerate(self.entries)
                if (layer is None or e.layer == layer) and (position is None or e.position == position)
                and (kind is None or e.kind == kind) and (site is None or e.site == site)]
        if not keep:
            raise InterpAFError(f"no probe with layer={layer} position={position} kind={kind} site={site}; "
                                f"have layers {sorted({e.layer for e in self.entries})}, positions "
                                f"{sorted({e.position for e in self.entries})}, kinds {sorted({e.kind for e in self.entries})}")
        idx = torch.tensor(keep)
        return ProbeSet(self.directions[idx], self.biases[idx], tuple(self.entries[i] for i in keep), self.model,
                        self.source, None if self.class_directions is None else self.class_directions[idx])

    # ------------------------------------------------------------------------------------------- compatibility
    def check(self, capture: Any, *, strict: bool = True) -> None:
        """Refuse a capture of another width (always) or another model (``strict``: weights fingerprint and adapter,
        or the name where a fingerprint is missing)."""
        other = capture.model if hasattr(capture, "model") and isinstance(capture.model, Mapping) else dict(capture)
        d_mine, d_other = int(self.model.get("d_model", -1)), int(other.get("d_model", -1))
        if d_mine != d_other:
            raise InterpAFError(f"probes were fitted at d_model={d_mine} ({self.model.get('name')!r}) but the capture has "
                                f"d_model={d_other} ({other.get('name')!r}); refit the probes on a capture of that model")
        if strict:
            # The weights fingerprint decides when both sides have one (a model folder may move); else the name.
            keys = ("adapter", "fingerprint") if self.model.get("fingerprint") and other.get("fingerprint") else ("name", "adapter")
            for key in keys:
                if str(self.model.get(key, "")) != str(other.get(key, "")):
                    raise InterpAFError(f"probes come from model {self.model.get('name')!r} (adapter {self.model.get('adapter')!r}) "
                                        f"but the capture is of {other.get('name')!r} (adapter {other.get('adapter')!r}; "
                                        f"{key} differs); refit on this capture or pass strict=False (--no-strict)")

    def score(self, capture: Any, *, strict: bool = True) -> Float[Tensor, "rows K"]:
        """Apply every probe to a capture (its own site/position/layer) -> scores ``[rows, K]`` (NaN where the
        capture lacks that position in a row)."""
        self.check(capture, strict=strict)
        out = torch.full((capture.n_rows, len(self)), float("nan"))
        for k, e in enumerate(self.entries):
            acts = capture.acts(e.site, e.position)[:, capture.layer_index(e.layer)].float()
            out[:, k] = acts @ self.directions[k].float() + self.biases[k].float()
        return out

    # ------------------------------------------------------------------------------------------- files
    def save(self, path: str | Path) -> Path:
        """Write ``<path>.safetensors`` + ``<path>.json`` (``path`` without suffix); returns the JSON path.

        The JSON records the sha256 of the tensors file and a checksum of its own content, which :meth:`load`
        checks. Both files are written atomically, tensors first, so a crash never leaves a JSON that points at
        half-written tensors; an existing file of that name that is not a probe file is never overwritten."""
        from safetensors.torch import save as to_bytes

        from interp_af import atomic, owned

        base = Path(path)
        base = base.with_suffix("") if base.suffix in (".json", ".safetensors") else base
        st, js = base.with_name(base.name + ".safetensors"), base.with_name(base.name + ".json")
        _refuse_foreign(st, js)
        owned.ensure_dir(base.parent, what="probes")
        tensors = {"direction": self.directions.detach().float().contiguous().cpu(),
                   "bias": self.biases.detach().float().contiguous().cpu()}
        if self.class_directions is not None:
            tensors["class_direction"] = self.class_directions.detach().float().contiguous().cpu()
        data = to_bytes(tensors, metadata={"format": FORMAT})
        doc = {"format": FORMAT, "version": VERSION, "tensors": st.name, "model": dict(self.model),
               "source": _jsonable(dict(self.source)), "probes": [_jsonable(asdict(e)) for e in self.entries],
               "score": "x . direction[k] + bias[k] on raw activations; > 0 means the label's positive class",
               "directions": {DECISION_NORMAL: "logistic weight fitted on standardised features, mapped back as "
                                               "w / sd: the decision normal; for scoring only",
                              CLASS_MEAN_DIFFERENCE: "mean(positive class) - mean(negative class) of the training "
                                                     "rows: the class direction; for geometry and steering",
                              "class_direction": "tensor class_direction[k]: probe k's class direction, whatever "
                                                 "its kind"},
               "tensors_sha256": hashlib.sha256(data).hexdigest(), "tensors_bytes": len(data)}
        doc = json.loads(json.dumps(doc))  # the checksum is over what a reader will parse back
        doc["checksum"] = _doc_checksum(doc)
        atomic.write_bytes(st, data)
        atomic.write_json(js, doc, indent=1)
        return js

    @classmethod
    def load(cls, path: str | Path) -> "ProbeSet":
        """Read a probe pair written by :meth:`save` (give either file or the common stem). The tensors' sha256
        and the JSON's checksum are verified (cached per file); a damaged or edited file is named in one line."""
        from interp_af import checksums

        base = Path(path)
        base = base.with_suffix("") if base.suffix in (".json", ".safetensors") else base
        js = base.with_name(base.name + ".json")
        refit = "refit the probes (interp-af probe)"
        if not js.exists():
            raise InterpAFError(f"no probe file {js}; give the path written by `interp-af probe` (the .json or its stem)")
        doc = _read_doc(js)
        if doc.get("format") != FORMAT:
            raise InterpAFError(f"{js} is not an interp_af probe file; give a file written by `interp-af probe`")
        if "checksum" in doc and _doc_checksum(doc) != doc["checksum"]:
            raise InterpAFError(f"probe file {js} is corrupted or was edited (checksum mismatch); {refit}")
        if not isinstance(doc.get("tensors"), str) or not isinstance(doc.get("probes"), list):
            raise InterpAFError(f"probe file {js} lacks its 'tensors' or 'probes' entry (damaged); {refit}")
        st = js.with_name(doc["tensors"])
        if not st.exists():
            raise InterpAFError(f"probe tensors {st} are missing beside {js}; copy both files together")
        if doc.get("tensors_sha256"):
            checksums.verify_file(st, doc["tensors_sha256"], size=doc.get("tensors_bytes"), what="probe tensors",
                                  hint=f"copy the pair again or {refit}")
        t = _read_tensors(st, refit)
        try:
            entries = tuple(ProbeEntry(**{**e, "C": float(e["C"]) if e.get("C") is not None else float("nan")})
                            for e in doc["probes"])
        except (TypeError, ValueError, KeyError) as err:
            raise InterpAFError(f"probe file {js} has a malformed probe entry ({err}); {refit}") from None
        d, b = t["direction"], t["bias"]
        if d.dim() != 2 or b.shape != (d.shape[0],):
            raise InterpAFError(f"{st} holds direction {list(d.shape)} and bias {list(b.shape)}; expected [K, d] and "
                                f"[K]; {refit}")
        if d.shape[0] != len(entries):
            raise InterpAFError(f"{st} holds {d.shape[0]} probes but {js} lists {len(entries)}; the pair is mismatched")
        return cls(d, b, entries, doc.get("model", {}), doc.get("source", {}), t.get("class_direction"))


def _doc_checksum(doc: Mapping[str, Any]) -> str:
    """sha256 of the JSON's canonical form without its own ``checksum`` key."""
    body = {k: v for k, v in doc.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _read_doc(js: Path) -> dict:
    try:
        doc = json.loads(js.read_text(encoding="utf-8"))
    except ValueError:  # invalid JSON or not UTF-8
        raise InterpAFError(f"{js} is not valid JSON (corrupted); refit the probes") from None
    except OSError as err:
        raise InterpAFError(f"probe file {js} cannot be read ({err.strerror}); check its permissions") from None
    if not isinstance(doc, dict):
        raise InterpAFError(f"{js} is not an interp_af probe file; give a file written by `interp-af probe`")
    return doc


def _read_tensors(st: Path, refit: str) -> dict[str, Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        t = load_file(str(st))
    except (SafetensorError, ValueError, OSError) as err:
        why = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InterpAFError(f"probe tensors {st} are unreadable ({why}); {refit}") from None
    if "direction" not in t or "bias" not in t:
        raise InterpAFError(f"probe tensors {st} lack 'direction' or 'bias' (keys: {', '.join(sorted(t))}); {refit}")
    return t


def _refuse_foreign(st: Path, js: Path) -> None:
    """Never overwrite a file the toolkit did not write: an existing ``.json`` must be a probe file, and an
    existing ``.safetensors`` must be named by it or carry the probe format in its header."""
    doc = None
    if js.exists():
        try:
            doc = json.loads(js.read_text(encoding="utf-8"))
        except (ValueError, OSError):
            doc = None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise InterpAFError(f"{js} exists and is not an interp_af probe file; interp_af never overwrites a file "
                                f"it did not write: choose another name or --out")
    if st.exists():
        ours = isinstance(doc, dict) and doc.get("tensors") == st.name
        if not ours:
            from interp_af.acts.sfio import read_header

            try:
                ours = read_header(st)[0].get("__metadata__", {}).get("format") == FORMAT
            except (ValueError, OSError, AttributeError):
                ours = False
        if not ours:
            raise InterpAFError(f"{st} exists and is not an interp_af probe file; interp_af never overwrites a file "
                                f"it did not write: choose another name or --out")


def _jsonable(obj: Any) -> Any:
    """NaN -> None and numpy scalars -> Python, so the JSON is strict and readable anywhere."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return None if np.isnan(obj) else float(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj
