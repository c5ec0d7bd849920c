"""How Layer 2 reads Layer 1: Layer 1's output ablated, Layer 2's queries, keys and values each
computed from the ablated stream or kept from the clean run (the paper's section-4 check,
arXiv:2503.05631: Layer 1 acts on CIWL through Layer 2's keys and values, not its queries).

Variants, each scored on every evaluator (`VARIANTS`; the clean model is `intact`):
- `ablated`:       Layer 1's head outputs replaced (zero or their mean over the training set) everywhere;
- `qkv_clean`:     ... but Layer 2's queries, keys and values all taken from the clean run (what is
                   left is Layer 1's direct effect on the logits);
- `q_ablated`, `k_ablated`, `v_ablated`: ... with only that one of Layer 2's queries, keys or values
                   recomputed from the ablated stream, the other two from the clean run.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from transformer.data import EVALUATORS, Batch
from transformer.choices import FULL_ACCURACY
from transformer.evaluate import judge
from transformer.model import ModelConfig, forward

RECOMPUTED = {"ablated": "qkv", "qkv_clean": "", "q_ablated": "q", "k_ablated": "k", "v_ablated": "v"}
VARIANTS = ("intact", *RECOMPUTED)
VARIANT_LABELS = {"intact": "intact", "ablated": "Layer 1 ablated", "qkv_clean": "q, k, v clean",
                  "q_ablated": "q recomputed", "k_ablated": "k recomputed", "v_ablated": "v recomputed"}
# The paper's CIWL accuracies for the same variants (arXiv:2503.05631, section 4: 98.7 % intact, 98.5 %
# with Layer 2's q, k, v kept from the clean run, 57.5 % with k recomputed from the ablated stream,
# 59.3 % with v, 95.4 % with q).
PAPER_CIWL = {"intact": 0.987, "qkv_clean": 0.985, "k_ablated": 0.575, "v_ablated": 0.593, "q_ablated": 0.954}
LAYER1_RESULT = "blocks.0.attn.hook_result"


@partial(jax.jit, static_argnums=(1, 4))
def readout_logits(params, cfg: ModelConfig, batch: Batch, replacement: jax.Array, recompute: str) -> jax.Array:
    """Logits with every Layer-1 head's output replaced by `replacement` (T, H, d_model) and Layer 2's
    q, k, v taken from the clean run except those named in `recompute` (a subset of "qkv")."""
    _, clean = forward(params, cfg, batch.x, batch.y, cache=True)
    hooks = {LAYER1_RESULT: lambda r: jnp.broadcast_to(replacement[None], r.shape)}
    for part in "qkv":
        if part not in recompute:
            name = f"blocks.1.attn.hook_{part}"
            hooks[name] = lambda _, kept=clean[name]: kept
    return forward(params, cfg, batch.x, batch.y, hooks=hooks)


def readout_scores(params, cfg: ModelConfig, sets: dict[str, Batch], replacement: jax.Array, variant: str) -> dict:
    """{'{evaluator}_acc': accuracy} under `variant` (one of VARIANTS)."""
    out = {}
    for name, batch in sets.items():
        if variant == "intact":
            logits = forward(params, cfg, batch.x, batch.y)
        else:
            logits = readout_logits(params, cfg, batch, replacement, RECOMPUTED[variant])
        out[f"{name}_acc"] = float(judge(logits, batch, full=name in FULL_ACCURACY)[0].mean())
    return out


def readout_table(run, steps: list[int]) -> list[dict]:
    """Rows {step, sequences, mode, variant, '{evaluator}_acc'} at each checkpoint of `steps` of a
    `transformer.analysis.Run`, for zero- and mean-ablation of Layer 1."""
    sets = run.sets
    rows = []
    for step in steps:
        params = run.params(step)
        _, acts = forward(params, run.model, sets["train"].x, sets["train"].y, cache=True)
        mean = acts[LAYER1_RESULT].mean(axis=0)
        for mode, repl in (("zero", jnp.zeros_like(mean)), ("mean", mean)):
            for variant in VARIANTS if mode == "zero" else VARIANTS[1:]:
                ev = readout_scores(params, run.model, sets, repl, variant)
                rows.append({"step": step, "sequences": run.sequences(step), "mode": "none" if variant == "intact"
                             else mode, "variant": variant, **{f"{n}_acc": ev[f"{n}_acc"] for n in EVALUATORS}})
    return rows


def readout_lines(rows: list[dict]) -> list[str]:
    """What `coop transformer analyze` prints of the readout rows: CIWL, ICL and flip per variant."""
    lines = [f"{'sequences':>11}  {'Layer 1 ablated, Layer 2 reads':<40}{'CIWL':>7}{'ICL':>7}{'flip':>7}"]
    what = {"intact": "nothing ablated", "ablated": "q, k, v from the ablated stream",
            "qkv_clean": "q, k, v from the clean run", "q_ablated": "only q from the ablated stream",
            "k_ablated": "only k from the ablated stream", "v_ablated": "only v from the ablated stream"}
    for r in rows:
        label = what[r["variant"]] + ("" if r["mode"] == "none" else f" ({r['mode']})")
        lines.append(f"{r['sequences']:>11,}  {label:<40}{r['ciwl_acc']:>7.3f}{r['icl_acc']:>7.3f}{r['flip_acc']:>7.3f}")
    return lines
