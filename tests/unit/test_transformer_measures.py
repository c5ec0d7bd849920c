"""Progress measures and ablation on a hand-built model whose attention is set by its weights,
so the answers are known."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from transformer.analysis import (
    ablated_scores,
    induction_strength,
    layer1_outputs,
    layer1_attention,
    progress_measures,
    second_label_attention,
)
from transformer.data import gaussian_clusters, sample
from transformer.evaluate import evaluate_all
from transformer.model import ModelConfig, forward, init_params


# A hand-built model: no layer norm, tokens carry only a one-hot position (scale S), so attention
# is set by W_Q and W_K alone. d_head 8 >= 5 positions.
HAND = ModelConfig(classes=8, dim=4, d_model=16, heads=2, layers=2, layer_norm=False)
S = 12.0  # score of a matched position: S^2 / sqrt(8) ~ 51, so softmax puts ~all weight there


def _hand_params(layer2_to: int | None):
    """Layer 1: head 0 attends to the previous token, head 1 to itself. Layer 2: both heads attend
    from every position to position `layer2_to` (uniformly if None). Value/output weights are zero,
    so the residual stream stays the position code."""
    p = init_params(jax.random.PRNGKey(0), HAND)
    p = {k: jnp.zeros_like(v) for k, v in p.items()}
    p["pos.W_pos"] = S * jnp.eye(5, 16)
    eye = jnp.eye(16, 8)  # position t -> coordinate t
    shift = jnp.eye(16, 8, k=1)  # position t -> coordinate t + 1
    p["blocks.0.attn.W_Q"] = jnp.stack([eye, eye], axis=1)
    p["blocks.0.attn.W_K"] = jnp.stack([shift, eye], axis=1)  # head 0: key of t-1 matches query t
    if layer2_to is not None:
        to_one = jnp.zeros((16, 8)).at[:, 0].set(1.0)  # every query -> coordinate 0
        key_at = jnp.zeros((16, 8)).at[layer2_to, 0].set(1.0)  # only position `layer2_to` has it
        p["blocks.1.attn.W_Q"] = jnp.stack([to_one, to_one], axis=1)
        p["blocks.1.attn.W_K"] = jnp.stack([key_at, key_at], axis=1)
    return p


@pytest.fixture(scope="module")
def batches():
    src = gaussian_clusters(jax.random.PRNGKey(1), HAND.classes, HAND.dim, 0.5)
    return sample(src, jax.random.PRNGKey(2), 300, "bursty"), sample(src, jax.random.PRNGKey(3), 300, "flip")


def test_layer1_measures_on_hand_built_attention(batches):
    train_set, flip_set = batches
    m = progress_measures(_hand_params(None), HAND, train_set, flip_set)
    np.testing.assert_allclose(m["l1_prev"], [1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(m["l1_self"], [0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(m["l1_y2_prev"], [1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(m["l1_y2_first"], [0.0, 0.0], atol=1e-6)
    # uniform Layer-2 attention (W_Q = W_K = 0): no preference between the two labels
    np.testing.assert_allclose(m["l2_induction"], [0.0, 0.0], atol=1e-7)


def test_uniform_attention_gives_the_causal_average(batches):
    train_set, _ = batches
    p = _hand_params(None)
    p["blocks.0.attn.W_Q"] = jnp.zeros_like(p["blocks.0.attn.W_Q"])
    _, acts = forward(p, HAND, train_set.x, train_set.y, cache=True)
    prev, self_ = layer1_attention(acts)
    # label at position 1 sees 2 tokens, at position 3 sees 4: mean of 1/2 and 1/4
    np.testing.assert_allclose(prev, 0.375, atol=1e-6)
    np.testing.assert_allclose(self_, 0.375, atol=1e-6)
    for value in second_label_attention(acts):  # the second label sees 4 tokens
        np.testing.assert_allclose(value, 0.25, atol=1e-6)


@pytest.mark.parametrize("position", [1, 3])
def test_induction_strength_on_hand_built_attention(batches, position):
    _, flip_set = batches
    _, acts = forward(_hand_params(position), HAND, flip_set.x, flip_set.y, cache=True)
    c = np.asarray(flip_set.classes)
    paired_first = c[:, 0] == c[:, 2]  # the query's class sits in the first pair: its label is at 1
    expected = np.mean(np.where(paired_first == (position == 1), 1.0, -1.0))
    assert 0.2 < paired_first.mean() < 0.8  # both cases occur, so the sign handling is tested
    np.testing.assert_allclose(induction_strength(acts, flip_set), expected, atol=1e-6)


def test_ablation_keep_all_is_the_model_and_drop_all_zeroes_layer1(batches):
    cfg = ModelConfig(classes=8, dim=4, d_model=16, heads=2)
    params = init_params(jax.random.PRNGKey(5), cfg)
    train_set, flip_set = batches
    sets = {"train": train_set, "flip": flip_set}
    plain = evaluate_all(params, cfg, sets)
    zero = jnp.zeros((5, 2, 16))
    outputs = layer1_outputs(params, cfg, sets)
    for path in ("total", "direct"):
        kept = ablated_scores(params, cfg, sets, jnp.ones(2), zero, path, outputs)
        for k in plain:
            np.testing.assert_allclose(kept[k], plain[k], rtol=1e-5, err_msg=f"{path} {k}")
    # total zero-ablation of every head == zeroing Layer 1's summed output
    dropped = ablated_scores(params, cfg, sets, jnp.zeros(2), zero, "total")
    hooked = evaluate_all(params, cfg, sets, hooks={"blocks.0.hook_attn_out": jnp.zeros_like})
    for k in plain:
        np.testing.assert_allclose(dropped[k], hooked[k], rtol=1e-5)
    # mean replacement by the batch's own mean changes the loss (it is not a no-op)
    mean = outputs["train"].mean(axis=0)
    assert outputs["train"].shape == (300, 5, 2, 16) and mean.shape == (5, 2, 16)
    meaned = ablated_scores(params, cfg, sets, jnp.zeros(2), mean, "total")
    assert abs(float(meaned["train_loss"]) - float(plain["train_loss"])) > 1e-4
