"""Benchmark of activation capture (issue 5): cost over a plain forward, speed-up over the naive recipe, memory.

For each model (the built-in organism, or a tiny Llama stand-in when it is not built yet; and a random-init
Llama-shaped model of about 100M parameters with a 32,000-token vocabulary) it measures, on the same prompts
(free/paid twins of AdvBench requests rendered by the setting):

- ``capture_over_forward``: wall time of ``interp_af.acts.capture`` (every layer's ``resid_post`` at the 4
  named positions, plus the compliance metric, written to disk) / wall time of plain batched forward passes
  of the same handle over the same batches (median over ``--reps`` interleaved pairs). Target <= 1.15.
- ``capture_speedup_vs_run_with_cache``: wall time of the naive recipe (TransformerLens ``run_with_cache`` per
  prompt with a full cache, then slicing the 4 positions of every layer's ``resid_post``, metric from the
  logits) / wall time of the capture. Target >= 2.
- ``capture_rss_ratio_10x``: peak RSS of a capture of 10N prompts / of N prompts, each in its own subprocess
  (peak measured over the capture phase: the kernel's high-water mark is reset with ``/proc/self/clear_refs``
  after the model is loaded, so loading spikes do not hide the capture's own memory). Target <= 1.1.

The three lines are measured on the TransformerLens backend (``backend="tl"``), since the naive recipe,
``run_with_cache``, is TL's. An extra line repeats the timings through the nnsight backend, which runs the plain
``transformers`` model (on CPU its attention kernels are much faster than TransformerLens's); the default
backend, ``auto``, captures through that route (``benchmarks/real.py`` measures it on SmolLM2).

Run: ``.venv/bin/python benchmarks/capture.py`` (about 4-5 minutes on 2 CPU cores). On a GPU:
``--device cuda --dtype bfloat16 --big llama3-8b`` (random-init model of Llama-3.1-8B's shape; also prints
tokens/s forward-only and with capture).
"""

from __future__ import annotations

import argparse
import gc
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

from harness import Clock, LoadAverage, interleave, ratio_line, reset_peak_rss, status_bytes  # noqa: E402

ADVBENCH = Path(__file__).resolve().parents[2] / "shared" / "data" / "advbench_harmful_behaviors.csv"
POSITIONS = ("cue", "end_system", "end_user", "decision")
CACHE = Path(os.environ.get("INTERP_AF_BENCH_CACHE", Path.home() / ".cache" / "interp_af" / "bench"))
BIG = {  # shape name -> (d_model, n_layers, n_heads, n_kv_heads, d_mlp, vocab)
    "llama-100m": (768, 12, 12, 4, 1536, 32000),
    "llama-tiny": (64, 2, 4, 2, 128, 8000),   # a smoke size (tests/test_benchmarks.py)
    "llama3-8b": (4096, 32, 32, 8, 14336, 128256),
}


def _queries(n: int):
    from interp_af.setting.queries import benign_queries, load_queries

    qs = load_queries(ADVBENCH, limit=n) if ADVBENCH.exists() else []
    while len(qs) < n:  # no AdvBench copy beside the checkout: cycle the benign set with fresh ids
        from interp_af.setting.types import Query

        b = benign_queries()
        qs += [Query(f"bench-{len(qs) + i}", q.text, q.harmful, q.source) for i, q in enumerate(b)]
    return qs[:n]


def _corpus() -> list[str]:
    from interp_af.setting.prompts import get_variant

    v = get_variant("default")
    qs = _queries(60)
    return [(c.system + "\n" + c.user) for q in qs for c in (v.conversation(q, "free"), v.conversation(q, "paid"))]


def build_models(big: str, dtype: str = "float32", device: str = "cpu", only: str = "") -> dict[str, tuple[Path, str]]:
    """{label: (model dir, variant)}: the organism (or a tiny Llama stand-in) and the big random-init model
    (``only``: just the models whose label contains it; the others are not built either)."""
    import transformers as tf

    from interp_af.testing.tiny import TinySpec, build_tiny_model, model_config, train_tokenizer

    out: dict[str, tuple[Path, str]] = {}
    try:
        from interp_af.organism import organism_path

        if only and only not in "organism":
            raise LookupError("not wanted")
        out["organism"] = (organism_path(), "organism")
    except LookupError:
        pass
    except Exception:  # noqa: BLE001 - not built yet: a tiny Llama of organism size stands in
        d = CACHE / "bench-tiny-d256-l6"
        if not (d / "config.json").exists():
            build_tiny_model(d, TinySpec(arch="llama", d_model=256, n_layers=6, n_heads=8, n_kv_heads=4,
                                         vocab_size=8000), corpus=_corpus())
        out["tiny-llama-d256-l6 (organism not built)"] = (d, "default")
    if only and only not in big:
        return out
    d_model, n_layers, n_heads, n_kv, d_mlp, vocab = BIG[big]
    d = CACHE / f"bench-{big}-{dtype}"
    if not (d / "config.json").exists():
        tok = train_tokenizer("llama3", _corpus(), vocab_size=8000)
        cfg = model_config("llama", vocab_size=vocab, d_model=d_model, n_layers=n_layers, n_heads=n_heads,
                           n_kv_heads=n_kv, d_mlp=d_mlp, bos_token_id=tok.bos_token_id,
                           eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        torch.manual_seed(0)
        # built in the benchmark's dtype on its device: an 8B model in float32 on CPU would need 32 GB of RAM
        with torch.device(device):
            model = tf.AutoModelForCausalLM.from_config(cfg, dtype=getattr(torch, dtype))
        model.save_pretrained(d)
        tok.save_pretrained(d)
        del model
    out[big] = (d, "default")
    return out


def load(model_dir: Path, variant: str, n_prompts: int, args, backend: str = "tl"):
    from interp_af.models.handle import load_model
    from interp_af.setting.twins import render_arms

    handle = load_model(model_dir, backend=backend, dtype=args.dtype, device=args.device)
    if variant == "organism":
        from interp_af.organism import organism_queries

        qs = organism_queries(n=n_prompts // 2)
    else:
        qs = _queries(n_prompts // 2)
    return handle, render_arms(handle.tokenizer, qs, variant)[:n_prompts]


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


@torch.no_grad()
def plain_forward(handle, prompts, batch_size: int, device: str) -> Clock:
    """The same batches capture uses (longest first), metric inputs, logits at the last token only."""
    from interp_af.models.metric import decision_tokens, metric_inputs

    dt = decision_tokens(handle.tokenizer)
    order = sorted(range(len(prompts)), key=lambda i: (-len(prompts[i]), i))
    with Clock() as c:
        for b in range(0, len(order), batch_size):
            batch = handle.collate([metric_inputs(list(prompts[i].input_ids), dt) for i in order[b:b + batch_size]])
            handle.forward(batch)
        _sync(device)
    return c


def run_capture(handle, prompts, out: Path, batch_size: int, device: str) -> Clock:
    from interp_af.acts import capture

    shutil.rmtree(out, ignore_errors=True)
    with Clock() as c:
        capture(handle, prompts, out, sites=("resid_post",), positions=POSITIONS, batch_size=batch_size,
                progress=False)
        _sync(device)
    return c


@torch.no_grad()
def naive(handle, prompts, device: str) -> Clock:
    """TransformerLens run_with_cache per prompt with a full cache, then slicing (what users write first)."""
    from interp_af.models.metric import decision_tokens, logit_diff, metric_inputs

    tl = handle.model
    dt = decision_tokens(handle.tokenizer)
    rows, diffs = [], []
    with Clock() as c:
        for p in prompts:
            toks = torch.tensor([metric_inputs(list(p.input_ids), dt)], device=handle.device)
            logits, cache = tl.run_with_cache(toks)
            pos = torch.tensor([p.positions[k] for k in POSITIONS])
            rows.append(torch.stack([cache[f"blocks.{layer}.hook_resid_post"][0, pos].cpu()
                                     for layer in range(handle.n_layers)], dim=1))  # [P, L, d]
            diffs.append(logit_diff(logits[:, -1], dt).cpu())
            del cache, logits
        _sync(device)
    return c


def rss_child(args) -> None:
    """Subprocess body: load, reset the RSS high-water mark, capture, report peak RSS of the capture phase."""
    handle, prompts = load(Path(args.model), args.variant, args.n, args)
    gc.collect()
    base = status_bytes("VmRSS")
    reset = reset_peak_rss()
    run_capture(handle, prompts, Path(args.out), args.batch_size, args.device)
    print(json.dumps({"peak": status_bytes("VmHWM"), "base": base, "reset": reset, "n": len(prompts)}))


def rss_of(model_dir: Path, variant: str, n: int, out: Path, args) -> dict:
    cmd = [sys.executable, __file__, "--rss-child", "--model", str(model_dir), "--variant", variant, "--n", str(n),
           "--out", str(out), "--batch-size", str(args.batch_size), "--device", args.device, "--dtype", args.dtype]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-3000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def bench_model(label: str, model_dir: Path, variant: str, args, tmp: Path) -> dict:
    n = args.n
    handle, prompts = load(model_dir, variant, n, args)
    prompts_n = prompts[:n]
    tokens = sum(len(p) for p in prompts_n)
    print(f"# {label}: {sum(p.numel() for p in handle.model.parameters()) / 1e6:.0f}M params, "
          f"{handle.n_layers} layers, d_model {handle.d_model}, {n} prompts x {tokens / n:.0f} tokens, "
          f"batch {args.batch_size}", flush=True)
    plain_forward(handle, prompts_n[: args.batch_size], args.batch_size, args.device)  # warm-up
    reps = iter(range(10**6))
    # interleaved A B A B: other jobs on a shared machine hit both sides alike
    t = interleave({"forward": lambda: plain_forward(handle, prompts_n, args.batch_size, args.device),
                    "capture": lambda: run_capture(handle, prompts_n, tmp / f"cap-{next(reps)}", args.batch_size,
                                                   args.device)}, args.reps, warmup=0)
    fw, cp = t["forward"], t["capture"]
    nv = naive(handle, prompts_n, args.device)
    cap_line = ratio_line("capture_over_forward", cp, fw, clock="wall")
    res = {"forward": min(fw, key=lambda c: c.wall), "capture": min(cp, key=lambda c: c.wall), "naive": nv}
    del handle
    gc.collect()
    nn_line = ""
    if args.nnsight:  # the same capture through the nnsight backend (plain transformers numerics and kernels)
        nh, _ = load(model_dir, variant, n, args, backend="nnsight")
        plain_forward(nh, prompts_n[: args.batch_size], args.batch_size, args.device)
        nreps = iter(range(10**6))
        nt = interleave({"forward": lambda: plain_forward(nh, prompts_n, args.batch_size, args.device),
                         "capture": lambda: run_capture(nh, prompts_n, tmp / f"ncap-{next(nreps)}", args.batch_size,
                                                        args.device)}, args.reps, warmup=0)
        nfw, ncp = nt["forward"], nt["capture"]
        nbest = min(ncp, key=lambda c: c.wall)
        nn_line = (f"  nnsight backend: capture/forward {ratio_line('', ncp, nfw, 'wall')[2:]}, "
                   f"run_with_cache (TL) / capture {nv.wall / nbest.wall:.2f} (cpu time "
                   f"{nv.cpu / nbest.cpu:.2f}); forward {tokens / min(f.wall for f in nfw):,.0f} tok/s, capture "
                   f"{tokens / nbest.wall:,.0f} tok/s")
        del nh
        gc.collect()
    small = rss_of(model_dir, variant, n, tmp / "rss-n", args)
    large = rss_of(model_dir, variant, 10 * n, tmp / "rss-10n", args)
    f, c = res["forward"], res["capture"]
    print(cap_line)
    print(f"capture_speedup_vs_run_with_cache: {nv.wall / c.wall:.2f}")
    print(f"capture_rss_ratio_10x: {large['peak'] / small['peak']:.3f}")
    print(f"  wall: forward {f.wall:.2f} s ({tokens / f.wall:,.0f} tok/s), capture {c.wall:.2f} s "
          f"({tokens / c.wall:,.0f} tok/s), run_with_cache per prompt {nv.wall:.2f} s")
    print(f"  capture/forward per pair (wall): {', '.join(f'{b.wall / a.wall:.3f}' for a, b in zip(fw, cp))}")
    print(f"  cpu time (steadier on a shared machine): run_with_cache/capture {nv.cpu / c.cpu:.2f}")
    print(f"  peak RSS {small['peak'] / 2**20:.0f} MiB for {n} prompts vs {large['peak'] / 2**20:.0f} MiB for "
          f"{10 * n}; growth during the capture {(small['peak'] - small['base']) / 2**20:.0f} vs "
          f"{(large['peak'] - large['base']) / 2**20:.0f} MiB", flush=True)
    if nn_line:
        print(nn_line, flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4, help="prompts per timing run (RSS: N vs 10N)")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--reps", type=int, default=3, help="interleaved forward/capture pairs (median ratio)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--big", default="llama-100m", choices=sorted(BIG))
    ap.add_argument("--no-nnsight", dest="nnsight", action="store_false", help="skip the nnsight-backend lines")
    ap.add_argument("--only", default="", help="run only models whose label contains this")
    ap.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        rss_child(args)
        return
    print(f"# machine: {platform.node()} {platform.machine()} {os.cpu_count()} CPUs, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), device {args.device}, dtype {args.dtype}"
          + (f", {torch.cuda.get_device_name()}" if args.device.startswith("cuda") else ""))
    print(f"# command: {' '.join([Path(sys.executable).name, *sys.argv])}", flush=True)
    t0 = time.perf_counter()
    loadavg = LoadAverage()
    models = build_models(args.big, args.dtype, args.device, args.only)
    tmp = Path(tempfile.mkdtemp(prefix="iaf-capbench-"))
    try:
        for label, (d, variant) in models.items():
            if args.only and args.only not in label:
                continue
            bench_model(label, d, variant, args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(loadavg.line())
    print(f"# total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
