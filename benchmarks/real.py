"""Speed at real depth and vocabulary (issue 18): SmolLM2-135M-Instruct (30 layers, vocabulary 49,152) against
the plain ``transformers`` forward, side by side in one run.

Prompts: the default variant (``default``, no chain of thought) on ``--queries`` AdvBench requests x 2 arms
(free/paid twins, about 490 tokens each with SmolLM2's tokenizer), batches of ``--batch-size``, float32 on CPU.
Every ratio is the median of interleaved repetitions (A B A B, :mod:`harness`) on process CPU time, with its
min and max and the wall-time median beside it. Printed lines (``name: value ...``):

- ``gap_over_forward``: the gap stage's forward metric (:func:`interp_af.analysis.gap.score_prompts`, default
  backend) / a plain ``transformers`` forward over the same batches that computes logits at the decision
  position only (``logits_to_keep=1``). Target <= 1.05.
- ``default_backend_over_hf``: the default backend's own forward pass (``handle.forward`` per batch, logits at
  the last position) / the same plain forward. Target <= 1.10. ``nnsight_over_hf`` is the nnsight route's.
- ``capture_over_forward``: :func:`interp_af.acts.capture` (``resid_post`` of every layer at the 4 named
  positions, plus the metric, written to disk) / the default backend's forward. Target <= 1.10.
- ``capture_rss_ratio_10x``: peak RSS of the capture phase for 10N prompts / for N (one subprocess each, the
  high-water mark reset after loading). Target <= 1.05. The same subprocesses give the scaling table (time and
  peak memory of capture and of the gap vs prompt count 1x/10x and prompt length 1x/~4x).
- ``patch_speedup``: ``transformer_lens.patching.generic_activation_patch`` (one full pass per cell, the
  library's helper) / the toolkit's exact sweep (``handle.patch_cells``: prefix KV cache, start at the patched
  layer and at the earliest patched position, logits at the last position only) on the same (layer, position)
  cells of ``resid_pre``, cold (the prefix computed in the timed call); ``patch_speedup_per_cell`` the ratio per
  marginal cell, ``patch_speedup_warm`` with the prefix cached from an earlier call (as in a study); with
  ``patch_max_abs_diff``, the largest |difference| of the patched logit differences. Targets >= 10, <= 1e-4.
- ``atp_forward_equivalents``: attribution patching over every layer of head_out, resid_pre and mlp_out (two
  forward passes and one backward) / one forward pass of one prompt; ``atp_spearman_<site>``: its Spearman
  against exact patching on the cells both computed (``--exact-layers`` evenly spaced layers). Target <= 3.
- ``study_minutes``: with ``--study [CONFIG]``, the real-model study run cold (a fresh run folder).

Run (the numbers in ``benchmarks/RESULTS.md``)::

    flock /tmp/interp_af_heavy.lock .venv/bin/python benchmarks/real.py

``--queries 1 --reps 1 --scale-n 1 --patch-layers 2 --patch-positions 2 --exact-layers 1`` is a smoke size
(``tests/test_benchmarks.py``); ``--model PATH`` runs the same on another model (a tiny one in the test).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from harness import (LoadAverage, interleave, median_seconds, ratio_line, reset_peak_rss,  # noqa: E402
                     set_threads, status_bytes, timed)

ROOT = Path(__file__).resolve().parents[1]
ADVBENCH = ROOT.parent / "shared" / "data" / "advbench_harmful_behaviors.csv"
POSITIONS = ("cue", "end_system", "end_user", "decision")
TARGET = "smollm2-135m-instruct"


# -- prompts ----------------------------------------------------------------------------------------------
def variant_options(spec: str) -> dict:
    """``--system-prompt``: "" (the default), ``xK`` (the default system prompt's clauses K times: about K times
    as long) or a text file whose contents come before the default clauses."""
    if not spec:
        return {}
    from interp_af.setting.prompts import CLAUSE_ORDER

    if spec.startswith("x") and spec[1:].isdigit():
        return {"clauses": tuple(CLAUSE_ORDER) * int(spec[1:])}
    text = Path(spec).read_text()
    return {"clauses": ("extra", *CLAUSE_ORDER), "clause_texts": {"extra": text.replace("{", "{{").replace("}", "}}")}}


def twins_for(tokenizer, n_queries: int, system: str = ""):
    from interp_af.setting.queries import load_queries
    from interp_af.setting.twins import make_twins

    qs = load_queries(ADVBENCH if ADVBENCH.exists() else None, limit=n_queries)
    return make_twins(tokenizer, qs, "default", progress=False, **variant_options(system))


def prompts_of(twins) -> list:
    return [p for t in twins for p in (t.a, t.b)]


def batches(handle, prompts, dt, batch_size: int) -> list:
    """The batches the gap's forward metric runs: longest first, ``batch_size`` prompts each."""
    from interp_af.models.metric import metric_inputs

    order = sorted(range(len(prompts)), key=lambda i: (-len(prompts[i]), i))
    return [handle.collate([metric_inputs(list(prompts[i].input_ids), dt) for i in order[b:b + batch_size]])
            for b in range(0, len(order), batch_size)]


# -- the sides ----------------------------------------------------------------------------------------------
@torch.no_grad()
def hf_forward(hf, bs) -> None:
    """Plain transformers: no hooks, no tracing; logits at the last position only (``logits_to_keep=1``)."""
    from interp_af.models.handle import position_ids

    for b in bs:
        hf(input_ids=b.input_ids, attention_mask=b.attention_mask, position_ids=position_ids(b), logits_to_keep=1)


def handle_forward(handle, bs) -> None:
    for b in bs:
        handle.forward(b)


def gap_metric(handle, prompts, batch_size: int) -> None:
    from interp_af.analysis.gap import score_prompts

    score_prompts(handle, prompts, batch_size=batch_size, progress=False)


def run_capture(handle, prompts, out: Path, batch_size: int) -> None:
    from interp_af.acts import capture

    shutil.rmtree(out, ignore_errors=True)
    capture(handle, prompts, out, sites=("resid_post",), positions=POSITIONS, batch_size=batch_size, progress=False)


# -- parts -----------------------------------------------------------------------------------------------------
def part_forward(args, h, nn, prompts, dt, tmp: Path) -> None:
    bs = batches(h, prompts, dt, args.batch_size)
    tokens = sum(int(b.lengths.sum()) for b in bs)
    n = iter(range(10**6))
    sides = {
        "hf": lambda: hf_forward(nn.hf_model, bs),
        "default": lambda: handle_forward(h, bs),
        "gap": lambda: gap_metric(h, prompts, args.batch_size),
        "capture": lambda: run_capture(h, prompts, tmp / f"cap-{next(n)}", args.batch_size),
        "nnsight": lambda: handle_forward(nn, bs),
    }
    warm = batches(h, prompts[:2], dt, args.batch_size)   # first-call costs (allocations, imports) off the clock
    hf_forward(nn.hf_model, warm), handle_forward(h, warm), handle_forward(nn, warm)
    t = interleave(sides, args.reps, warmup=0)
    print(f"# {len(prompts)} prompts, {tokens} tokens ({tokens / len(prompts):.0f} per prompt), batch "
          f"{args.batch_size}, {len(bs)} batches; median cpu s: "
          + ", ".join(f"{k} {median_seconds(v):.1f}" for k, v in t.items()), flush=True)
    print(ratio_line("gap_over_forward", t["gap"], t["hf"]))
    print(ratio_line("default_backend_over_hf", t["default"], t["hf"]))
    print(ratio_line("nnsight_over_hf", t["nnsight"], t["hf"]))
    print(ratio_line("capture_over_forward", t["capture"], t["default"]))
    print(ratio_line("capture_over_hf", t["capture"], t["hf"]))
    print(f"  plain transformers: {tokens / median_seconds(t['hf'], 'wall'):,.0f} tok/s wall, "
          f"{median_seconds(t['hf']) / len(prompts):.2f} cpu s per prompt; default backend "
          f"({h.backend}, route {getattr(h, 'route', '-')}) {median_seconds(t['default']) / len(prompts):.2f}", flush=True)


def part_patch(args, h, twins, dt) -> None:
    from transformer_lens import HookedTransformer
    from transformer_lens import patching as tlp

    from interp_af.models.metric import logit_diff, metric_inputs
    from interp_af.models.patching import Cell

    # the auto backend patches on its TransformerLens side (built here, on first need, as in a study)
    tl_side = getattr(h, "tl", h)
    if not isinstance(getattr(tl_side, "model", None), HookedTransformer):
        print("patch_speedup: not measured (the default handle has no HookedTransformer)")
        return
    tw = twins[0]
    clean, corrupt = metric_inputs(tw.a.input_ids, dt), metric_inputs(tw.b.input_ids, dt)
    T = len(corrupt)
    f = next(i for i, (x, y) in enumerate(zip(corrupt, clean)) if x != y)
    layers = spread(range(h.n_layers), args.patch_layers)
    positions = spread(range(f, T), args.patch_positions)
    cells = [Cell(L, None, (p,)) for L in layers for p in positions]
    m = tl_side.model
    with torch.no_grad():
        _, cache = m.run_with_cache(torch.tensor([clean]), names_filter=lambda n: n.endswith("hook_resid_pre"))
    index = __import__("pandas").DataFrame({"layer": [c.layer for c in cells], "pos": [c.positions[0] for c in cells]})
    tlp.tqdm = lambda x, **k: x  # silence TL's per-cell progress bar
    got: dict = {}

    def ours(cold: bool = True) -> None:
        if cold:   # the first query of a study: its prefix keys/values are computed, not taken from the last call
            tl_side._prefix = None
        got["ours"] = h.patch_cells("resid_pre", corrupt, clean, cells, dt).values

    def tl() -> None:
        with torch.no_grad():
            got["tl"] = tlp.generic_activation_patch(
                m, torch.tensor([corrupt]), cache, lambda lg: logit_diff(lg[:, -1], dt)[0],
                tlp.layer_pos_patch_setter, "resid_pre", index_df=index)

    t = interleave({"ours": ours, "tl": tl}, 1, warmup=0)   # TL's helper is one full pass per cell: one pair
    diff = float((got["ours"] - got["tl"].double().cpu()).abs().max())
    # ours = a fixed cost (two reference runs and the prefix, ~3 passes) + a small cost per cell; the fixed part
    # is shared by every cell of a sweep, so the ratio grows with the cell count: half the cells tells them apart
    half = cells[::2]
    tl_side._prefix = None
    t_half = timed(lambda: h.patch_cells("resid_pre", corrupt, clean, half, dt)).cpu
    ours(cold=True)
    t_warm = timed(lambda: ours(cold=False)).cpu   # every later query, site and direction: the prefix is cached
    per_cell = max(t["ours"][0].cpu - t_half, 1e-9) / (len(cells) - len(half))
    print(f"# patch: {len(cells)} cells ({len(layers)} layers x {len(positions)} positions >= first difference "
          f"{f} of {T} tokens); TL {t['tl'][0].wall:.1f} s wall, ours {t['ours'][0].wall:.1f} s; cpu per cell: TL "
          f"{t['tl'][0].cpu / len(cells):.2f} s, ours {per_cell:.3f} s marginal (fixed part "
          f"{t['ours'][0].cpu - per_cell * len(cells):.1f} s)")
    print(ratio_line("patch_speedup", t["tl"], t["ours"], digits=1))
    print(f"patch_speedup_per_cell: {t['tl'][0].cpu / len(cells) / per_cell:.1f} (TL cpu per cell / ours marginal "
          "cpu per cell: the speed-up of a sweep large enough to share the fixed part)")
    print(f"patch_speedup_warm: {t['tl'][0].cpu / t_warm:.1f} (the same cells with the prefix keys/values cached, as "
          "for every query after the first: they share the system prompt before the cue)")
    print(f"patch_max_abs_diff: {diff:.2e} (logit differences up to {float(got['tl'].abs().max()):.2f})", flush=True)


def part_atp(args, h, twins, dt) -> None:
    from interp_af.analysis.attribution import attribute, spearman
    from interp_af.analysis.patching import patch_twins
    from interp_af.models.metric import metric_inputs

    tw = twins[0]
    sites = ("head_out", "resid_pre", "mlp_out")
    one = h.collate([metric_inputs(tw.b.input_ids, dt)])
    t = interleave({"forward": lambda: h.forward(one),
                    "atp": lambda: attribute(h, [tw], sites=sites, method="atp", progress=False)}, args.reps)
    print(f"# atp: {h.n_layers} layers x {', '.join(sites)}; forward {median_seconds(t['forward'], 'wall'):.2f} s "
          f"wall, atp {median_seconds(t['atp'], 'wall'):.2f} s")
    print(ratio_line("atp_forward_equivalents", t["atp"], t["forward"], digits=2))
    layers = spread(range(h.n_layers), args.exact_layers)
    by_pos = {"head_out": False, "resid_pre": True, "mlp_out": True}
    est = attribute(h, [tw], sites=sites, method="atp", layers=layers, by_position=by_pos, progress=False)
    for site in sites:
        ex = patch_twins(h, [tw], site=site, layers=layers, by_position=by_pos[site], n_boot=0, progress=False)
        mask = ex.computed.flatten()
        rho = spearman(est[site].effect().flatten()[mask].tolist(), ex.effect().flatten()[mask].tolist())
        print(f"atp_spearman_{site}: {rho:.3f} ({int(mask.sum())} cells, layers {list(layers)})", flush=True)


def spread(values, k: int) -> tuple[int, ...]:
    """``k`` evenly spaced items of ``values``, first and last included."""
    v = list(values)
    if k >= len(v):
        return tuple(v)
    if k == 1:
        return (v[-1],)
    return tuple(sorted({v[round(i * (len(v) - 1) / (k - 1))] for i in range(k)}))


# -- scaling (one subprocess per size: peak RSS is per process) --------------------------------------------------
def scale_child(args) -> None:
    """Load, then for capture and for the gap: reset the RSS high-water mark, run, report time and peak."""
    from interp_af.models.handle import load_model

    h = load_model(args.model)
    twins = twins_for(h.tokenizer, args.scale_queries, args.system_prompt)
    prompts = prompts_of(twins)
    out = {"prompts": len(prompts), "tokens": sum(len(p) for p in prompts)}
    tmp = Path(tempfile.mkdtemp(prefix="iaf-real-scale-"))
    try:
        for kind, fn in (("capture", lambda: run_capture(h, prompts, tmp / "cap", args.batch_size)),
                         ("gap", lambda: gap_metric(h, prompts, args.batch_size))):
            base = status_bytes("VmRSS")
            reset = reset_peak_rss()
            tm = timed(fn)
            out[kind] = {"wall": tm.wall, "cpu": tm.cpu, "peak": status_bytes("VmHWM"), "base": base, "reset": reset}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(out))


def part_scaling(args) -> None:
    n, long = args.scale_n, args.long_system
    # every size fills its batches (at most 2n prompts each), so that memory against the prompt count is not
    # memory against the batch width (half a batch at 1x, full ones at 10x read 1.27 instead of 1.03)
    batch = min(args.batch_size, 2 * n)
    sizes = {"1x": (n, ""), "10x prompts": (10 * n, ""), f"~{long[1:]}x length": (n, long)}
    res = {}
    for label, (q, system) in sizes.items():
        cmd = [sys.executable, __file__, "--scale-child", "--model", args.model, "--scale-queries", str(q),
               "--threads", str(args.threads),
               "--batch-size", str(batch), "--system-prompt", system]
        p = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if p.returncode != 0:
            raise RuntimeError(p.stderr[-3000:])
        res[label] = json.loads(p.stdout.strip().splitlines()[-1])
    mib = 2 ** 20
    print(f"# scaling (batch {batch}; peak RSS of the phase, whole process; time in cpu s / wall s):")
    print("# | size | prompts | tokens/prompt | capture cpu s | capture wall s | capture peak MiB | gap cpu s | "
          "gap wall s | gap peak MiB |")
    for label, r in res.items():
        c, g = r["capture"], r["gap"]
        print(f"# | {label} | {r['prompts']} | {r['tokens'] / r['prompts']:.0f} | {c['cpu']:.1f} | {c['wall']:.1f} | "
              f"{c['peak'] / mib:.0f} | {g['cpu']:.1f} | {g['wall']:.1f} | {g['peak'] / mib:.0f} |")
    small, big = res["1x"]["capture"], res["10x prompts"]["capture"]
    print(f"capture_rss_ratio_10x: {big['peak'] / small['peak']:.3f} ({res['1x']['prompts']} vs "
          f"{res['10x prompts']['prompts']} prompts; growth during the capture {(small['peak'] - small['base']) / mib:.0f}"
          f" vs {(big['peak'] - big['base']) / mib:.0f} MiB)", flush=True)


def part_study(args) -> None:
    cfg = Path(args.study)
    if not cfg.exists():
        print(f"study_minutes: not measured (no study config at {cfg}; pass --study PATH)")
        return
    out = Path(tempfile.mkdtemp(prefix="iaf-real-study-"))
    try:
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "interp_af.cli", "run", str(cfg), "--out", str(out / "run"), "-q"],
                           cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True, capture_output=True)
        minutes = (time.perf_counter() - t0) / 60
        if p.returncode != 0:
            print(f"study_minutes: failed after {minutes:.1f} min (exit {p.returncode}): {p.stderr.strip()[-300:]}")
            return
        print(f"study_minutes: {minutes:.1f} (cold, {cfg})", flush=True)
    finally:
        shutil.rmtree(out, ignore_errors=True)


PARTS = ("forward", "patch", "atp", "scaling")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=TARGET, help="model (target name, folder, .gguf); default SmolLM2-135M-Instruct")
    ap.add_argument("--queries", type=int, default=16, help="AdvBench requests (x 2 arms)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--reps", type=int, default=3, help="interleaved repetitions of every side (median ratio)")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"which parts to run (of {', '.join(PARTS)})")
    ap.add_argument("--patch-layers", type=int, default=6, help="layers of the patch_speedup cells (evenly spaced)")
    ap.add_argument("--patch-positions", type=int, default=4, help="positions (>= the first difference) of those cells")
    ap.add_argument("--exact-layers", type=int, default=3, help="layers of the exact sweeps AtP is compared with")
    ap.add_argument("--scale-n", type=int, default=2, help="scaling base: queries (x 2 arms); 10x and ~4x length")
    ap.add_argument("--long-system", default="x4", help="the long system prompt of the scaling table (xK or a file)")
    ap.add_argument("--system-prompt", default="", help="xK (the default clauses K times) or a file placed before them")
    ap.add_argument("--study", nargs="?", const=str(ROOT / "experiments" / f"{TARGET}.toml"), default=None,
                    help="also run the real-model study cold (default config: experiments/<target>.toml)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1: robust on a shared machine, "
                    "see benchmarks/harness.py; 0: torch's default)")
    ap.add_argument("--scale-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--scale-queries", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    threads = set_threads(args.threads)
    if args.scale_child:
        scale_child(args)
        return
    from interp_af.models.handle import load_model
    from interp_af.models.metric import decision_tokens

    loadavg = LoadAverage()
    print(f"# machine: {platform.node()} {os.cpu_count()} CPUs, torch {torch.__version__} ({threads}), float32 on "
          "cpu; no GPU lent")
    print(f"# command: {' '.join([Path(sys.executable).name, *sys.argv])}", flush=True)
    t0 = time.perf_counter()
    parts = set(args.parts.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="iaf-real-"))
    try:
        if parts & {"forward", "patch", "atp"}:
            h = load_model(args.model)                      # the default backend, as a user gets it
            twins = twins_for(h.tokenizer, args.queries, args.system_prompt)
            dt = decision_tokens(h.tokenizer)
            print(f"# model {args.model}: {h.n_layers} layers, d_model {h.d_model}, vocab {len(h.tokenizer)}; "
                  f"default backend {h.backend} (route {getattr(h, 'route', '-')}); {len(twins)} queries x 2 arms",
                  flush=True)
            if "forward" in parts:
                nn = load_model(args.model, backend="nnsight")  # its .hf_model is the plain transformers model
                part_forward(args, h, nn, prompts_of(twins), dt, tmp)
                del nn
            if "patch" in parts:
                part_patch(args, h, twins, dt)
            if "atp" in parts:
                part_atp(args, h, twins, dt)
            del h
        if "scaling" in parts:
            part_scaling(args)
        if args.study is not None:
            part_study(args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(loadavg.line())
    print(f"# total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
