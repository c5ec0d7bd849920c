"""Scoring: in-context accuracy, full accuracy, cross-entropy; all evaluators at once.

In-context accuracy: the prediction is the argmax of the logits restricted to the two labels present
in the context (chance 0.5); correct if it is the batch's target. `iwl` is scored by full accuracy
(argmax over all K labels; chance 1/K). The loss (`{name}_loss`) is the full cross-entropy over all
K labels. The in-context loss (`{name}_ctx_loss`, every evaluator but `iwl`, whose target is not in
context) is the cross-entropy of the logits restricted to the two context labels: log 2 at chance,
the loss that in-context accuracy is the argmax of. It measures how well the network tells the two
context labels apart, whatever mass it puts on other labels (on the ICL evaluator, the two labels
are 0 and 1, and a network that answers from its weights puts its mass on the query's own label: the
full loss then grows while the in-context loss only says how much of the ICL mechanism is left).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from transformer.choices import FULL_ACCURACY
from transformer.data import EVALUATORS, Batch
from transformer.model import ModelConfig, forward



def cross_entropy(logits: jax.Array, target: jax.Array) -> jax.Array:
    """(B,) cross-entropy of (B, K) logits against (B,) int targets."""
    return jax.nn.logsumexp(logits, axis=-1) - jnp.take_along_axis(logits, target[:, None], axis=-1)[:, 0]


def in_context_correct(logits: jax.Array, y: jax.Array, target: jax.Array) -> jax.Array:
    """(B,) bool: the context label with the larger logit is the target (ties go to the first label)."""
    ctx = jnp.take_along_axis(logits, y, axis=-1)  # (B, 2)
    pred = jnp.where(ctx[:, 0] >= ctx[:, 1], y[:, 0], y[:, 1])
    return pred == target


def context_cross_entropy(logits: jax.Array, y: jax.Array, target: jax.Array) -> jax.Array:
    """(B,) cross-entropy of the logits restricted to the two context labels `y` (B, 2) against
    `target` (one of them)."""
    ctx = jnp.take_along_axis(logits, y, axis=-1)  # (B, 2)
    return jax.nn.logsumexp(ctx, axis=-1) - jnp.where(y[:, 0] == target, ctx[:, 0], ctx[:, 1])


def full_correct(logits: jax.Array, target: jax.Array) -> jax.Array:
    return jnp.argmax(logits, axis=-1) == target


def score(params, cfg: ModelConfig, batch: Batch, full: bool = False, chunk: int = 1000, hooks=None) -> dict[str, jax.Array]:
    """{'acc', 'loss', 'ctx_loss'} ('ctx_loss' unless `full`) of `params` on `batch`; forward passes in chunks of `chunk` sequences
    (with `hooks` patching activations, see `model.forward`)."""
    n = batch.target.shape[0]
    accs, losses, ctx = [], [], []
    for i in range(0, n, chunk):
        b = jax.tree_util.tree_map(lambda a: a[i : i + chunk], batch)
        logits = forward(params, cfg, b.x, b.y, hooks=hooks)
        ok, loss = judge(logits, b, full)
        accs.append(ok)
        losses.append(loss)
        ctx.append(context_cross_entropy(logits, b.y, b.target))
    out = {"acc": jnp.concatenate(accs).mean(), "loss": jnp.concatenate(losses).mean()}
    if not full:
        out["ctx_loss"] = jnp.concatenate(ctx).mean()
    return out


def judge(logits: jax.Array, batch: Batch, full: bool = False) -> tuple[jax.Array, jax.Array]:
    """(B,) correct and (B,) cross-entropy of `logits` on `batch` (full accuracy if `full`, else in-context)."""
    ok = full_correct(logits, batch.target) if full else in_context_correct(logits, batch.y, batch.target)
    return ok, cross_entropy(logits, batch.target)


def evaluate_all(params, cfg: ModelConfig, sets: dict[str, Batch], hooks=None) -> dict[str, jax.Array]:
    """{'{name}_acc', '{name}_loss', '{name}_ctx_loss'} for every evaluator in `sets` (jit-friendly)."""
    out = {}
    for name in EVALUATORS:
        if name in sets:
            s = score(params, cfg, sets[name], full=name in FULL_ACCURACY, hooks=hooks)
            out.update({f"{name}_{k}": v for k, v in s.items()})
    return out
