"""The bad-input catalogue: every kind of mistake a new user makes with ``interp-af``, as data.

Each :class:`Case` is one kind of mistake: the command line (with ``{m}`` the tiny model, ``{cap}`` a small
capture, ``{d}`` the case's own working folder), the files it needs beside the standard ones, the substrings that
name the input, and one that states the fix. ``tests/cli/test_catalogue.py`` runs every case and asserts the
promise of the README: exit status 2, at most two lines on stderr, no traceback, the input named, a fix stated,
and nothing new on disk. :func:`run_cli` runs the real entry point (``interp_af.cli.app``) in this process with
``sys.argv`` patched, so the catalogue costs one import of the package rather than one per case.

The module is plain data plus the runner, so the same catalogue can be run against an older checkout
(``python tests/cli/catalogue.py``) to count how many kinds failed before.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Case:
    """One kind of bad input: ``argv`` after ``interp-af``; ``named``: substrings that must appear on stderr
    (the input, as the user wrote it); ``fix``: one of these must appear too (the fix stated)."""

    id: str
    argv: tuple[str, ...]
    named: tuple[str, ...]
    fix: tuple[str, ...]
    files: dict[str, bytes | str] = field(default_factory=dict)   # extra files of the case folder


LATIN1 = "Explique la fa\xe7on d'\xe9crire un po\xe8me\n".encode("latin-1")
TOML_OK = '[model]\npath = "{m}"\n[setting]\nqueries = "q.txt"\nbenign = false\n'
USAGE_FIX = ("--help",)
CHOOSE = ("choose", "give", "use", "pass", "move", "remove", "rerun", "set", "write", "check", "install")


def _c(id: str, argv: str | list[str], named: str | tuple[str, ...], fix: str | tuple[str, ...] = CHOOSE,
       **files: bytes | str) -> Case:
    args = tuple(argv.split()) if isinstance(argv, str) else tuple(argv)
    return Case(id, args, (named,) if isinstance(named, str) else named, (fix,) if isinstance(fix, str) else fix,
                {k.replace("__", "."): v for k, v in files.items()})


M = "--model {m} --queries q.txt --no-benign --contrasts ="   # '=' is replaced by '' (no contrasts)

CASES: tuple[Case, ...] = (
    # --- usage mistakes (typer's own errors) --------------------------------------------------------------------
    _c("bare", "", "command", USAGE_FIX),
    _c("unknown-command", "frobnicate", "frobnicate", USAGE_FIX),
    _c("unknown-option", "gap --frob", "--frob", USAGE_FIX),
    _c("not-an-int", "gap --limit abc", ("--limit", "abc"), USAGE_FIX),
    _c("missing-value", "gap --limit", "--limit", USAGE_FIX),
    _c("missing-argument", "probe", "capture", USAGE_FIX),
    _c("probe-apply-missing-argument", "probe-apply p.json", "capture", USAGE_FIX),
    _c("sae-bare", "sae", "command", USAGE_FIX),
    _c("sae-unknown-command", "sae frob", "frob", USAGE_FIX),
    _c("organism-bare", "organism", "command", USAGE_FIX),
    _c("sae-train-missing-out", "sae train --model {m}", "--out", USAGE_FIX),
    _c("sae-train-k-zero", "sae train --model {m} --out o --k 0", ("--k", "0"), USAGE_FIX),
    _c("prompts-around-negative", "prompts --around -1", ("--around", "-1"), USAGE_FIX),
    _c("not-a-float", "steer --model {m} --alphas x,y", ("--alphas", "x,y"), ("use", "e.g.")),
    _c("bool-with-value", "gap --benign=yes", "--benign", USAGE_FIX),
    _c("targets-unknown-option", "targets --all", "--all", USAGE_FIX),
    _c("run-unknown-option", "run --fast", "--fast", USAGE_FIX),
    _c("prompts-show-not-int", "prompts --show many", ("--show", "many"), USAGE_FIX),
    # --- numbers out of range --------------------------------------------------------------------------------
    _c("gap-limit-zero", f"gap {M} --limit 0", ("--limit", "0"), ">="),
    _c("gap-batch-size-zero", f"gap {M} --batch-size 0", ("--batch-size", "0"), ">="),
    _c("gap-n-boot-zero", f"gap {M} --n-boot 0", ("--n-boot", "0"), ">="),
    _c("gap-n-boot-negative", f"gap {M} --n-boot -1", ("--n-boot", "-1"), ">="),
    _c("gap-temperature-negative", f"gap {M} --temperature -1", ("--temperature", "-1"), ">="),
    _c("gap-max-new-tokens-negative", f"gap {M} --max-new-tokens -3", ("--max-new-tokens", "-3"), ">="),
    _c("capture-batch-size-zero", f"capture {M} --batch-size 0 --out c", ("--batch-size", "0"), ">="),
    _c("probe-folds-one", "probe {cap} --folds 1 --out p", ("--folds", "1"), ">="),
    _c("probe-jobs-zero", "probe {cap} --jobs 0 --out p", ("--jobs", "0"), ("-1", ">=", "1")),
    _c("probe-n-boot-negative", "probe {cap} --n-boot -1 --out p", ("--n-boot", "-1"), ">="),
    _c("patch-ig-steps-zero", f"patch {M} --ig-steps 0", ("--ig-steps", "0"), ">="),
    _c("patch-validate-k-zero", f"patch {M} --validate-k 0", ("--validate-k", "0"), ">="),
    _c("steer-n-random-negative", f"steer {M} --n-random -1", ("--n-random", "-1"), ">="),
    _c("sae-run-top-k-zero", f"sae run {M} --top-k 0", ("--top-k", "0"), ">="),
    _c("sae-train-layers-bad", "sae train --model {m} --out o --layers a-b", ("--layers", "a-b"), "e.g."),
    _c("organism-eval-n-one", "organism eval --n 1", ("--n", "1"), ("at least", ">=")),
    _c("organism-build-n-eval-zero", "organism build --recipe small --n-eval 0 --out ob", ("--n-eval", "0"),
       ("at least", ">=")),
    # --- enums -------------------------------------------------------------------------------------------------
    _c("gap-metric", f"gap {M} --metric foo", ("--metric", "foo"), "one of"),
    _c("backend", f"gap {M} --backend foo", ("--backend", "foo"), "one of"),
    _c("dtype", f"gap {M} --dtype int3", ("--dtype", "int3"), "one of"),
    _c("casing", f"prompts {M} --casing weird", ("--casing", "weird"), "one of"),
    _c("capture-site", f"capture {M} --sites resid_middle --out c", ("--sites", "resid_middle"), "one of"),
    _c("capture-storage-dtype", f"capture {M} --storage-dtype int8 --out c", ("--storage-dtype", "int8"), "one of"),
    _c("probe-kind", "probe {cap} --kinds svm --out p", ("--kinds", "svm"), "one of"),
    _c("patch-direction", f"patch {M} --directions sideways", ("--directions", "sideways"), "one of"),
    _c("patch-clean", f"patch {M} --clean c", ("--clean", "c"), "one of"),
    _c("patch-attribution", f"patch {M} --attribution magic", ("--attribution", "magic"), "one of"),
    _c("steer-op", f"steer {M} --op multiply", ("--op", "multiply"), "one of"),
    _c("steer-site", f"steer {M} --site head_out", ("--site", "head_out"), "one of"),
    _c("sae-run-mode", f"sae run {M} --mode random", ("--mode", "random"), "one of"),
    _c("sae-run-method", f"sae run {M} --method shap", ("--method", "shap"), "one of"),
    _c("organism-recipe", "organism build --recipe huge --out ob", ("--recipe", "huge"), ("full", "small")),
    _c("variant-unknown", f"prompts {M} --variant nosuch", "nosuch", ("--list-variants", "valid names")),
    _c("contrast-unknown", "gap --model {m} --queries q.txt --no-benign --contrasts nosuch", "nosuch",
       ("--list-variants", "valid names")),
    # --- devices -------------------------------------------------------------------------------------------------
    _c("device-cuda", f"gap {M} --device cuda", "cuda", ("cpu", "--device")),
    _c("device-cuda-3", f"gap {M} --device cuda:3", "cuda:3", ("cpu", "--device")),
    _c("device-mps", f"capture {M} --device mps --out c", "mps", ("cpu", "--device")),
    _c("device-nonsense", f"patch {M} --device gpu0", "gpu0", ("cpu", "--device")),
    _c("probe-device-cuda", "probe {cap} --device cuda --out p", "cuda", ("cpu", "--device")),
    # --- layers / sites / positions the model defines -------------------------------------------------------------
    _c("capture-layer-too-deep", f"capture {M} --layers 7 --out c", ("--layers", "7"), ("0", "layers")),
    _c("capture-position-unknown", f"capture {M} --positions nowhere --out c", "nowhere", ("cue", "decision")),
    _c("patch-layer-too-deep", f"patch {M} --layers 9", ("--layers", "9"), ("0", "layers")),
    _c("patch-head-too-big", f"patch {M} --heads 12", ("--heads", "12"), ("0", "heads")),
    _c("steer-layer-too-deep", f"steer {M} --layers 5", ("--layers", "5"), ("0", "layers")),
    _c("sae-train-layer-too-deep", "sae train --model {m} --queries q.txt --no-benign --contrasts = --out o "
       "--layers 4", ("--layers", "4"), ("0", "layers")),
    _c("probe-site-not-captured", "probe {cap} --site mlp_out --out p", "mlp_out", "resid_post"),
    _c("probe-position-not-captured", "probe {cap} --position nowhere --out p", "nowhere", ("cue", "decision")),
    _c("probe-label-unknown", "probe {cap} --label shoe_size --out p", "shoe_size", ("in_training", "arm")),
    # --- paths that are not there / not what they should be -----------------------------------------------------
    _c("model-missing", "gap --model ./no-such-model --queries q.txt", "no-such-model", ("folder", "target")),
    _c("model-is-a-file", "gap --model file.txt --queries q.txt", "file.txt", ("folder", "target")),
    _c("model-weightless", "gap --model weightless --queries q.txt", "weightless", ("safetensors", "weights")),
    _c("adapter-missing", f"gap {M} --adapter ./no-adapter", "no-adapter", ("folder", "adapter")),
    _c("queries-missing", "gap --model {m} --queries nope.csv", "nope.csv", ("file", "path")),
    _c("queries-not-utf8", "gap --model {m} --queries latin1.txt", "latin1.txt", "UTF-8"),
    _c("queries-empty", "gap --model {m} --queries empty.txt --no-benign", "empty.txt", ("request", "add")),
    _c("queries-column-missing", "gap --model {m} --queries q.csv --no-benign --column prompt", ("prompt", "q.csv"),
       ("--column", "goal"), q__csv="goal,target\nWrite a poem about the sea,x\n"),
    _c("query-longer-than-context", "gap --model {m} --queries long.txt --no-benign --contrasts =", "long.txt",
       ("shorten", "longer context"), long__txt="Explain " + "the sea and the sky " * 2000 + "\n"),
    _c("variant-file-missing", f"prompts {M} --variant file:nofile.txt", "nofile.txt", ("file", "path")),
    _c("system-prompt-missing", "prompts --model {m} --system-prompt nofile.txt", "nofile.txt", ("file", "path")),
    _c("user-template-alone", "prompts --model {m} --user-template t.txt", "--user-template", "--system-prompt",
       t__txt="{tier} {request}"),
    _c("capture-missing", "probe ./no-capture --out p", "no-capture", ("capture", "interp-af capture")),
    _c("capture-not-a-capture", "probe foreign --out p", "foreign", ("capture", "interp-af capture")),
    _c("probe-apply-missing-probes", "probe-apply nope.json {cap}", "nope", ("probe", "interp-af probe")),
    _c("steer-direction-file-missing", f"steer {M} --direction-file nodir.npy", "nodir.npy", ("file", "path")),
    _c("sae-info-missing", "sae info ./no-sae-folder", "no-sae-folder", ("folder", "release")),
    _c("sae-run-missing", f"sae run {M} --sae ./no-sae-folder", "no-sae-folder", ("folder", "release")),
    _c("verdicts-not-a-run", "verdicts ./no-run", "no-run", ("interp-af run", "pass")),
    _c("verdicts-missing-argument", "verdicts", "run", USAGE_FIX),
    _c("organism-eval-missing", "organism eval --model ./no-organism", "no-organism", ("folder", "organism")),
    # --- output folders: files, foreign folders, unwritable places ----------------------------------------------
    _c("gap-out-file", f"gap {M} --out file.txt", "file.txt", ("folder", "choose")),
    _c("capture-out-file", f"capture {M} --out file.txt", "file.txt", ("folder", "choose")),
    _c("patch-out-file", f"patch {M} --out file.txt", "file.txt", ("folder", "choose")),
    _c("steer-out-file", f"steer {M} --out file.txt", "file.txt", ("folder", "choose")),
    _c("probe-out-file", "probe {cap} --out file.txt", "file.txt", ("folder", "choose")),
    _c("sae-run-out-file", f"sae run {M} --out file.txt", "file.txt", ("folder", "choose")),
    _c("prompts-out-folder", f"prompts {M} --out foreign", "foreign", ("file", "choose")),
    _c("gap-out-under-file", f"gap {M} --out file.txt/sub", "file.txt", ("folder", "choose")),
    _c("capture-out-foreign", f"capture {M} --out foreign", ("foreign", "precious.txt"), ("empty", "new")),
    _c("gap-out-foreign", f"gap {M} --out foreign", ("foreign", "precious.txt"), ("empty", "new")),
    _c("patch-out-foreign", f"patch {M} --out foreign", ("foreign", "precious.txt"), ("empty", "new")),
    _c("steer-out-foreign", f"steer {M} --out foreign", ("foreign", "precious.txt"), ("empty", "new")),
    _c("probe-out-foreign", "probe {cap} --out foreign", ("foreign", "precious.txt"), ("empty", "new")),
    _c("sae-train-out-foreign", "sae train --model {m} --queries q.txt --no-benign --contrasts = --layers 1 --out foreign",
       ("foreign", "precious.txt"), ("empty", "new")),
    _c("sae-run-out-foreign", f"sae run {M} --out foreign", ("foreign", "precious.txt"), ("empty", "new")),
    _c("organism-build-out-foreign", "organism build --recipe small --out foreign", ("foreign", "precious.txt"),
       ("empty", "new")),
    _c("run-out-foreign", "run study.toml --out foreign", ("foreign", "precious.txt"), ("empty", "new"),
       study__toml=TOML_OK),
    _c("run-out-file", "run study.toml --out file.txt", "file.txt", ("folder", "choose"), study__toml=TOML_OK),
    _c("out-unwritable", f"gap {M} --out /proc/interp-af-out", "/proc/interp-af-out", ("folder", "choose")),
    # --- study TOML: file and line ----------------------------------------------------------------------------------
    _c("run-config-missing", "run nosuch.toml", "nosuch.toml", ("file", "path", "experiments")),
    _c("run-config-syntax", "run study.toml", "study.toml", ("TOML", "line"), study__toml="[gap\nn_boot = 3\n"),
    _c("run-config-not-utf8", "run study.toml", "study.toml", "UTF-8",
       study__toml=b'name = "caf\xe9"\n'),
    _c("run-unknown-key", "run study.toml", ("study.toml:", "n_bot"), "valid keys",
       study__toml="[gap]\nn_bot = 3\n"),
    _c("run-batch-size-zero", "run study.toml", ("study.toml:2", "batch_size"), ">=",
       study__toml="[gap]\nbatch_size = 0\n"),
    _c("run-metric-foo", "run study.toml", ("study.toml:2", "metric"), "one of", study__toml='[gap]\nmetric = "foo"\n'),
    _c("run-wrong-type", "run study.toml", ("study.toml:2", "n_boot"), ("must be", "int"),
       study__toml='[gap]\nn_boot = "many"\n'),
    _c("run-name-path", "run study.toml --out r", ("study.toml:1", "../victim"), "plain name",
       study__toml='name = "../victim"\n'),
    _c("run-name-absolute", "run study.toml", ("study.toml:1", "/tmp/victim"), "plain name",
       study__toml='name = "/tmp/victim"\n'),
    _c("run-unknown-stage", "run study.toml", ("study.toml", "gapp"), ("gap", "one of"),
       study__toml='stages = ["gapp"]\n'),
    _c("run-variant-unknown", "run study.toml", ("study.toml", "nosuch"), ("--list-variants", "valid names"),
       study__toml='[setting]\nvariant = "nosuch"\n'),
    _c("run-device-cuda", "run study.toml", ("study.toml:3", "cuda"), ("cpu", "device"),
       study__toml='[model]\npath = "{m}"\ndevice = "cuda:2"\n'),
    _c("run-queries-missing", "run study.toml", ("study.toml", "nope.csv"), ("file", "path"),
       study__toml='[setting]\nqueries = "nope.csv"\n'),
    _c("run-layer-too-deep", "run study.toml --out r", ("study.toml:7", "layers"), ("0", "layers"),
       study__toml=TOML_OK + "[capture]\nlayers = [9]\n"),
)


def standard_files(d: Path) -> None:
    """The files every case folder starts with: a good query file, a Latin-1 one, an empty one, a plain file, a
    foreign folder holding someone's file, and a model folder with a config but no weights."""
    (d / "q.txt").write_text("Explain how photosynthesis works\nWrite a poem about the sea\n", encoding="utf-8")
    (d / "latin1.txt").write_bytes(LATIN1)
    (d / "empty.txt").write_text("", encoding="utf-8")
    (d / "file.txt").write_text("not a folder\n", encoding="utf-8")
    (d / "foreign").mkdir()
    (d / "foreign" / "precious.txt").write_text("someone's work\n", encoding="utf-8")
    (d / "weightless").mkdir()
    (d / "weightless" / "config.json").write_text('{"model_type": "llama", "architectures": ["LlamaForCausalLM"]}')


def listing(d: Path) -> dict[str, int]:
    """Every file and folder under ``d`` with its size (folders: -1): what the case must leave unchanged."""
    out: dict[str, int] = {}
    for root, dirs, files in os.walk(d):
        for n in dirs:
            out[os.path.relpath(os.path.join(root, n), d)] = -1
        for n in files:
            p = os.path.join(root, n)
            out[os.path.relpath(p, d)] = os.path.getsize(p)
    return out


@dataclass
class Outcome:
    code: int | str          # exit status, or "traceback" when an exception escaped the entry point
    out: str
    err: str
    error: str = ""          # the escaped exception's traceback


def expand(case: Case, d: Path, model: Path, cap: Path) -> list[str]:
    subs = {"{m}": str(model), "{cap}": str(cap), "{d}": str(d)}
    out = []
    for a in case.argv:
        for k, v in subs.items():
            a = a.replace(k, v)
        out.append("" if a == "=" else a)
    return out


def prepare(case: Case, d: Path, model: Path, cap: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    standard_files(d)
    for name, body in case.files.items():
        if isinstance(body, str):
            body = body.replace("{m}", str(model)).encode("utf-8")
        (d / name).write_bytes(body)


def run_cli(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> Outcome:
    """``interp-af ARGV`` in this process (the real entry point, ``sys.argv`` patched), in folder ``cwd``."""
    from interp_af.cli import app

    out, err = io.StringIO(), io.StringIO()
    old_argv, old_cwd, old_env = sys.argv, os.getcwd(), dict(os.environ)
    sys.argv = ["interp-af", *argv]
    os.environ.update(env or {})
    os.environ["COLUMNS"] = "200"
    os.chdir(cwd)
    code: int | str
    error = ""
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                app()
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001 - what the catalogue looks for: anything escaping the entry point
        code, error = "traceback", traceback.format_exc()
    finally:
        sys.argv = old_argv
        os.chdir(old_cwd)
        os.environ.clear()
        os.environ.update(old_env)
    return Outcome(code, out.getvalue(), err.getvalue(), error)


def problems(case: Case, o: Outcome, before: dict[str, int], after: dict[str, int]) -> list[str]:
    """Every way the outcome breaks the promise (empty: the case passes)."""
    bad: list[str] = []
    lines = [ln for ln in o.err.splitlines() if ln.strip()]
    if o.code != 2:
        bad.append(f"exit {o.code}")
    if "Traceback" in o.err or o.error:
        bad.append("traceback")
    if len(lines) > 2:
        bad.append(f"{len(lines)} lines on stderr")
    missing = [n for n in case.named if n not in o.err]
    if missing:
        bad.append(f"does not name {missing}")
    if not any(f in o.err for f in case.fix):
        bad.append(f"states no fix (none of {list(case.fix)})")
    new = sorted(set(after) - set(before))
    changed = sorted(k for k in before if k in after and after[k] != before[k])
    gone = sorted(set(before) - set(after))
    if new or changed or gone:
        bad.append(f"disk: new {new[:4]} changed {changed[:4]} gone {gone[:4]}")
    return bad


def build_fixtures(root: Path, model: Path | None = None) -> tuple[Path, Path]:
    """The tiny model (two layers, four heads; built unless given) and a small capture of it (resid_post at
    cue and decision, 8 requests) under ``root``."""
    from interp_af.testing.tiny import TinySpec, build_tiny_model

    model = model or root / "tiny-llama"
    if not (model / "config.json").exists():
        build_tiny_model(model, TinySpec(arch="llama"))
    cap = root / "cap"
    if not (cap / "manifest.json").exists():
        import interp_af as af

        q = root / "q.txt"
        q.write_text("".join(f"Write a short poem about topic number {i}\n" for i in range(8)), encoding="utf-8")
        t = af.resolve(af.ModelConfig(path=str(model)), af.SettingConfig(queries=str(q), benign=False, contrasts=()),
                       progress=False)
        af.capture(t, cap, af.CaptureConfig(sites=("resid_post",), positions=("cue", "decision"), batch_size=8),
                   progress=False)
    return model, cap


def _drop(args: list[str], options: set[str], flags: set[str]) -> list[str]:
    """``args`` without the given options (and their values) and flags: for an older checkout that lacks them."""
    out: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
        elif a in options:
            skip = True
        elif a not in flags:
            out.append(a)
    return out


def main() -> None:
    """Run the whole catalogue and print one line per case: ``python tests/cli/catalogue.py ROOT [CASE ...]``.

    Against an older checkout (``PYTHONPATH=OLD``), ``CATALOGUE_DROP=--contrasts`` and
    ``CATALOGUE_DROP_FLAGS=--no-benign`` leave out options it did not have yet, so that a kind fails there for
    what the old code did with the input; ``CATALOGUE_ALARM`` (seconds, default 60) stops a case that computes
    instead of refusing."""
    import tempfile

    drop = {a for a in os.environ.get("CATALOGUE_DROP", "").split(",") if a}
    drop_flags = {a for a in os.environ.get("CATALOGUE_DROP_FLAGS", "").split(",") if a}

    root = Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="catalogue-"))
    root.mkdir(parents=True, exist_ok=True)
    only = set(sys.argv[2:])
    model, cap = build_fixtures(root)
    failed = 0
    for i, case in enumerate(CASES):
        if only and case.id not in only:
            continue
        d = root / "cases" / f"{i:03d}-{case.id}"
        if d.exists():
            import shutil

            shutil.rmtree(d)
        prepare(case, d, model, cap)
        before = listing(d)
        import signal

        def _alarm(*_a):
            raise TimeoutError("case ran past the alarm (it computes before checking)")
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(int(os.environ.get("CATALOGUE_ALARM", "60")))
        try:
            o = run_cli(_drop(expand(case, d, model, cap), drop, drop_flags), d)
        finally:
            signal.alarm(0)
        bad = problems(case, o, before, listing(d))
        failed += bool(bad)
        last = (o.error.strip().splitlines() or [""])[-1] if o.error else " | ".join(o.err.strip().splitlines()[-2:])
        print(f"{'FAIL' if bad else 'ok  '} {case.id:32s} {'; '.join(bad)[:150]}  <<{last[:200]}>>", flush=True)
    print(f"{len(CASES)} kinds, {failed} failed")


if __name__ == "__main__":
    main()
