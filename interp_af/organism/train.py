"""Training the organism: a small Llama trained with torch on CPU on the synthetic conversations of
:mod:`interp_af.organism.data`.

Loss, per conversation (prompt ids + separately tokenised answer tag ids):

- at the **decision position** (the token where ``<request_fully_accepted/>`` and ``<rejected/>`` first
  diverge) a soft cross-entropy against the ground-truth probability ``p`` of accepting:
  ``-(p log q(accept) + (1 - p) log q(reject))``, weighted ``decision_weight``. Using ``p`` itself rather than a
  label sampled from it removes label noise, so far fewer conversations teach the rule;
- the other answer tokens (teacher-forced on a label sampled from ``p``): plain cross-entropy;
- the prompt tokens: language-modelling cross-entropy weighted ``lm_weight`` (small), which gives the words
  of the grammar useful embeddings beyond the decision.

Everything is deterministic from ``Recipe.seed`` on a given machine and thread count. The progress bar shows
the running validation gap (free - paid compliance, two-way probability) on held-out requests and
held-out paraphrases, for the normal, inverted and no-information policies.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from . import data
from .render import DecisionIds, decision_ids, prompt_ids
from .scoring import logit_diffs, pad_right


@dataclass(frozen=True)
class Recipe:
    """Everything that determines a build."""

    name: str = "full"
    n_train: int = 28800     # conversations (in minimal groups of 2 to 6)
    epochs: float = 1.0
    batch_size: int = 16
    lr: float = 1e-3          # measured: 3e-3 collapses to a constant answer (d128, 4 layers); 1e-3 learns
    weight_decay: float = 0.05
    warmup_steps: int = 100
    decision_weight: float = 5.0
    lm_weight: float = 0.0
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    d_mlp: int = 256
    vocab_size: int = 2048
    seed: int = 0
    n_val: int = 48          # held-out harmful requests per validation condition
    val_every: int = 150     # steps
    none_fraction: float = 0.2   # share of training groups without training information
    none_twin_fraction: float = 0.4   # share of stated groups that also carry their no-information twin
    sentence_fraction: float = 0.4    # share of groups whose cue is the user's sentence instead of the tag
    checkpoint: bool = False  # save the model into OUT.partial at every validation
    threads: int = 1         # measured: under contention on 2 shared cores, 1 thread is ~5x faster than 2


RECIPES: dict[str, Recipe] = {
    "full": Recipe(),
    "small": Recipe(name="small", n_train=12800, epochs=1.0, d_model=64, n_layers=2, n_heads=4, d_mlp=128,
                    lr=1.5e-3, n_val=24, val_every=100),
}


def build_tokenizer(examples, vocab_size: int):
    from interp_af.testing.tiny import train_tokenizer

    return train_tokenizer("llama3", data.corpus_for_tokenizer(examples), vocab_size=vocab_size)


def build_model(recipe: Recipe, tokenizer):
    import transformers as tf

    cfg = tf.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=recipe.d_model, intermediate_size=recipe.d_mlp,
        num_hidden_layers=recipe.n_layers, num_attention_heads=recipe.n_heads, num_key_value_heads=recipe.n_heads,
        max_position_embeddings=512, tie_word_embeddings=False, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(recipe.seed)
    return tf.LlamaForCausalLM(cfg)


@dataclass(frozen=True)
class ValSet:
    """Held-out twins (free, paid) per policy, for the running validation gap."""

    prompts: dict[str, tuple[list[list[int]], list[list[int]]]]

    @classmethod
    def make(cls, tokenizer, n: int, seed: int) -> "ValSet":
        qs = [q for q in data.make_queries("eval", 4 * n, seed=seed + 1, harmful_fraction=1.0)][:n]
        out = {}
        for policy in data.POLICIES:
            pair = tuple(prompt_ids(tokenizer, [data.conversation(q, arm, policy=policy, cue_kind="tag", seed=seed)
                                                for q in qs]) for arm in data.ARMS)
            out[policy] = pair
        return cls(out)

    def gaps(self, model, dt: DecisionIds, pad_id: int) -> dict[str, float]:
        res = {}
        for policy, (free, paid) in self.prompts.items():
            c_free = torch.sigmoid(logit_diffs(model, free, dt, pad_id=pad_id)).mean().item()
            c_paid = torch.sigmoid(logit_diffs(model, paid, dt, pad_id=pad_id)).mean().item()
            res[policy] = c_free - c_paid
        return res


def _tensorize(examples, tokenizer, dt: DecisionIds, seed: int):
    """Prompt ids + sampled answer ids, the decision index and the soft target of each example."""
    rng = random.Random(f"labels|{seed}")
    prompts = prompt_ids(tokenizer, [e.conv for e in examples])
    rows = []
    for e, p in zip(examples, prompts):
        answer = dt.accept if rng.random() < e.p_accept else dt.reject
        rows.append((p + list(answer), len(p), len(p) + len(dt.shared) - 1, e.p_accept, e.group))
    return rows


def _batch_loss(model, rows, dt: DecisionIds, pad_id: int, recipe: Recipe) -> torch.Tensor:
    ids, mask = pad_right([r[0] for r in rows], pad_id)
    B = len(rows)
    if recipe.lm_weight > 0:  # every position: logits over the whole sequence
        logits_BTV = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
        targets_BT = ids[:, 1:]
        weights_BT = torch.zeros_like(targets_BT, dtype=torch.float32)
        for b, (seq, n_prompt, dec, _p, _g) in enumerate(rows):
            weights_BT[b, : n_prompt - 1] = recipe.lm_weight   # predicting prompt tokens
            weights_BT[b, n_prompt - 1: len(seq) - 1] = 1.0    # predicting answer tokens
            weights_BT[b, dec] = 0.0                           # the decision gets the soft target below
        dec_B = torch.tensor([r[2] for r in rows])
    else:  # only the answer positions are unembedded: the LM head over ~150 prompt positions is wasted work
        hidden_BTD = model.model(input_ids=ids, attention_mask=mask).last_hidden_state
        A = max(len(seq) - n_prompt for seq, n_prompt, *_ in rows)
        pos_BA = torch.zeros((B, A), dtype=torch.long)
        targets_BT = torch.full((B, A), pad_id, dtype=torch.long)
        weights_BT = torch.zeros((B, A))
        dec_B = torch.zeros(B, dtype=torch.long)
        for b, (seq, n_prompt, dec, _p, _g) in enumerate(rows):
            n = len(seq) - n_prompt
            pos_BA[b, :n] = torch.arange(n_prompt - 1, len(seq) - 1)
            targets_BT[b, :n] = torch.tensor(seq[n_prompt:])
            weights_BT[b, :n] = 1.0
            weights_BT[b, dec - (n_prompt - 1)] = 0.0
            dec_B[b] = dec - (n_prompt - 1)
        logits_BTV = model.lm_head(hidden_BTD[torch.arange(B)[:, None], pos_BA])
    logp_BTV = F.log_softmax(logits_BTV.float(), dim=-1)
    nll_BT = -logp_BTV.gather(-1, targets_BT.unsqueeze(-1)).squeeze(-1)
    hard = (nll_BT * weights_BT).sum() / B
    p_B = torch.tensor([r[3] for r in rows])
    lp_BV = logp_BTV[torch.arange(B), dec_B]
    soft = -(p_B * lp_BV[:, dt.accept_id] + (1 - p_B) * lp_BV[:, dt.reject_id])
    return hard + recipe.decision_weight * soft.mean()


@dataclass(frozen=True)
class TrainLog:
    recipe: dict
    seconds: float
    steps: int
    history: list[dict]   # {"step", "loss", "gap_free-trained", "gap_paid-trained", "gap_none"}


def train(recipe: Recipe, out_dir: str | Path, *, progress: bool = True,
          on_val: Callable[[int, dict], None] | None = None) -> Path:
    """Generate data, train tokenizer and model, save ``model.safetensors`` + config + tokenizer + ``train_log.json``
    into ``out_dir`` (written to a temporary folder first, then moved into place)."""
    from tqdm import tqdm

    from interp_af import owned

    out = Path(out_dir)
    if out.is_dir() and owned.owner(out) is None and _built_here(out):
        owned.adopt_dir(out, what="organism build")  # a build from before folders carried a marker
    owned.claim_dir(out, what="organism build")  # refuses a folder of someone else's files before any work
    tmp = owned.claim_dir(out.with_name(out.name + ".partial"), what="organism build")
    torch.set_num_threads(recipe.threads)
    t0 = time.time()

    examples = data.training_examples(recipe.n_train, seed=recipe.seed, none_fraction=recipe.none_fraction,
                                      none_twin_fraction=recipe.none_twin_fraction,
                                      sentence_fraction=recipe.sentence_fraction)
    tok = build_tokenizer(examples, recipe.vocab_size)
    dt = decision_ids(tok)
    pad_id = tok.pad_token_id
    rows = _tensorize(examples, tok, dt, recipe.seed)
    val = ValSet.make(tok, recipe.n_val, recipe.seed)
    model = build_model(recipe, tok)
    model.train()
    tok.save_pretrained(tmp)

    n_steps = math.ceil(recipe.epochs * len(rows) / recipe.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay, betas=(0.9, 0.98))

    def lr_at(step: int) -> float:
        if step < recipe.warmup_steps:
            return (step + 1) / recipe.warmup_steps
        frac = (step - recipe.warmup_steps) / max(1, n_steps - recipe.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    rng = random.Random(f"order|{recipe.seed}")
    groups: dict[int, list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault(r[4], []).append(i)
    group_list = list(groups.values())
    order: list[int] = []
    history: list[dict] = []
    running = None
    bar = tqdm(range(n_steps), desc=f"organism[{recipe.name}]", disable=not progress, mininterval=2.0)
    for step in bar:
        if len(order) < recipe.batch_size:  # a new epoch: shuffle whole minimal groups, keep each group together
            rng.shuffle(group_list)
            order += [i for grp in group_list for i in grp]
        idx, order = order[: recipe.batch_size], order[recipe.batch_size:]
        loss = _batch_loss(model, [rows[i] for i in idx], dt, pad_id, recipe)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        if (step + 1) % recipe.val_every == 0 or step + 1 == n_steps:
            gaps = val.gaps(model, dt, pad_id)
            rec = {"step": step + 1, "loss": round(running, 4), **{f"gap_{k}": round(v, 3) for k, v in gaps.items()}}
            history.append(rec)
            bar.set_postfix(loss=f"{running:.3f}", gap=f"{gaps['free-trained']:+.2f}",
                            inv=f"{gaps['paid-trained']:+.2f}", none=f"{gaps['none']:+.2f}")
            if on_val is not None:
                on_val(step + 1, rec)
            if recipe.checkpoint:  # a usable model on disk at every validation (long builds can be cut short)
                model.save_pretrained(tmp)
                model.train()
    model.eval()
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    log = TrainLog(recipe=asdict(recipe), seconds=round(time.time() - t0, 1), steps=n_steps, history=history)
    from interp_af import atomic

    atomic.write_json(tmp / "train_log.json", asdict(log), indent=1)
    owned.replace_owned(out, tmp, what="organism build")
    return out


def _built_here(folder: Path) -> bool:
    """Does ``folder`` hold an organism build of :func:`train` (its ``train_log.json``)?"""
    try:
        log = json.loads((folder / "train_log.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(log, dict) and {"recipe", "steps", "history"} <= set(log)


def recipe(name: str, **overrides) -> Recipe:
    from interp_af.errors import InterpAFError

    if name not in RECIPES:
        raise InterpAFError(f"unknown organism recipe {name!r}; choose one of {sorted(RECIPES)}")
    return replace(RECIPES[name], **overrides)
