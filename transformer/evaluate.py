"""Scoring: in-context accuracy, full accuracy, cross-entropy; all evaluators at once.

In-context accuracy: the prediction is the argmax of the logits restricted to the two labels present
in the context (chance 0.5); correct if it is the batch's target. `iwl` is scored by full accuracy
(argmax over all K labels; chance 1/K). The loss is always the full cross-entropy over all K labels.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from transformer.data import EVALUATORS, Batch
from transformer.model import ModelConfig, forward

FULL_ACCURACY = ("iwl",)


def cross_entropy(logits: jax.Array, target: jax.Array) -> jax.Array:
    """(B,) cross-entropy of (B, K) logits against (B,) int targets."""
    return jax.nn.logsumexp(logits, axis=-1) - jnp.take_along_axis(logits, target[:, None], axis=-1)[:, 0]


def in_context_correct(logits: jax.Array, y: jax.Array, target: jax.Array) -> jax.Array:
    """(B,) bool: the context label with the larger logit is the target (ties go to the first label)."""
    ctx = jnp.take_along_axis(logits, y, axis=-1)  # (B, 2)
    pred = jnp.where(ctx[:, 0] >= ctx[:, 1], y[:, 0], y[:, 1])
    return pred == target


def full_correct(logits: jax.Array, target: jax.Array) -> jax.Array:
    return jnp.argmax(logits, axis=-1) == target


def score(params, cfg: ModelConfig, batch: Batch, full: bool = False, chunk: int = 1000, hooks=None) -> dict[str, jax.Array]:
    """{'acc', 'loss'} of `params` on `batch`; forward passes in chunks of `chunk` sequences
    (with `hooks` patching activations, see `model.forward`)."""
    n = batch.target.shape[0]
    accs, losses = [], []
    for i in range(0, n, chunk):
        b = jax.tree_util.tree_map(lambda a: a[i : i + chunk], batch)
        ok, loss = judge(forward(params, cfg, b.x, b.y, hooks=hooks), b, full)
        accs.append(ok)
        losses.append(loss)
    return {"acc": jnp.concatenate(accs).mean(), "loss": jnp.concatenate(losses).mean()}


def judge(logits: jax.Array, batch: Batch, full: bool = False) -> tuple[jax.Array, jax.Array]:
    """(B,) correct and (B,) cross-entropy of `logits` on `batch` (full accuracy if `full`, else in-context)."""
    ok = full_correct(logits, batch.target) if full else in_context_correct(logits, batch.y, batch.target)
    return ok, cross_entropy(logits, batch.target)


def evaluate_all(params, cfg: ModelConfig, sets: dict[str, Batch], hooks=None) -> dict[str, jax.Array]:
    """{'{name}_acc', '{name}_loss'} for every evaluator in `sets` (jit-friendly)."""
    out = {}
    for name in EVALUATORS:
        if name in sets:
            s = score(params, cfg, sets[name], full=name in FULL_ACCURACY, hooks=hooks)
            out[f"{name}_acc"], out[f"{name}_loss"] = s["acc"], s["loss"]
    return out
