"""Layer 2 reading Layer 1 (`transformer.readout`) on a hand-built model where the answer is known."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from transformer.data import Batch
from transformer.model import ModelConfig, forward, init_params
from transformer.readout import VARIANTS, readout_logits, readout_scores

# No layer norm; positions one-hot at scale S in coordinates 0-4, label k embedded (and read out)
# as coordinate 8 + k, exemplars embedded as nothing.
# Layer 1, head 0 attends to the previous token and carries the position-0 flag into coordinate 6,
# so positions 0 and 1 hold a 1 there: a signal Layer 2 can only see through Layer 1.
# Layer 2, head 0: keys A * coordinate 6 (plus a small eps on position 3), one query everywhere,
# values copy the label coordinates to the logits. With Layer 1 its query attends to positions 0-1
# (y1: it answers y1); without it, to position 3 a little more than to the rest (it answers y2).
HAND = ModelConfig(classes=8, dim=4, d_model=16, heads=2, layers=2, layer_norm=False)
S, A, EPS = 12.0, 100.0, 1.0


def hand_params():
    p = {k: jnp.zeros_like(v) for k, v in init_params(jax.random.PRNGKey(0), HAND).items()}
    p["pos.W_pos"] = S * jnp.eye(5, 16)
    p["unembed.W_U"] = jnp.eye(8, 16, k=8)
    z = jnp.zeros((16, 2, 8))
    p["blocks.0.attn.W_Q"] = z.at[:, 0].set(jnp.eye(16, 8))
    p["blocks.0.attn.W_K"] = z.at[:, 0].set(jnp.eye(16, 8, k=1))  # the key of t-1 matches the query of t
    p["blocks.0.attn.W_V"] = z.at[0, 0, 0].set(1 / S)  # the position-0 flag
    p["blocks.0.attn.W_O"] = jnp.zeros((2, 8, 16)).at[0, 0, 6].set(1.0)
    p["blocks.1.attn.W_Q"] = z.at[:5, 0, 0].set(1 / S)
    p["blocks.1.attn.W_K"] = z.at[6, 0, 0].set(A).at[3, 0, 0].set(EPS / S)
    p["blocks.1.attn.W_V"] = z.at[8:, 0, :].set(jnp.eye(8))
    p["blocks.1.attn.W_O"] = jnp.zeros((2, 8, 16)).at[0, :, 8:].set(jnp.eye(8))
    return p


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    y = np.stack([rng.choice(8, 2, replace=False) for _ in range(64)]).astype(np.int32)
    x = rng.standard_normal((64, 3, 4)).astype(np.float32)
    return Batch(x=jnp.asarray(x), y=jnp.asarray(y), target=jnp.asarray(y[:, 0]), classes=jnp.zeros((64, 3), jnp.int32))


def test_layer2_reads_layer1_through_its_keys_only(batch):
    p = hand_params()
    zero = jnp.zeros((5, 2, 16))
    acc = {v: readout_scores(p, HAND, {"ciwl": batch}, zero, v)["ciwl_acc"] for v in VARIANTS}
    assert acc == {"intact": 1.0, "ablated": 0.0, "qkv_clean": 1.0, "q_ablated": 1.0, "k_ablated": 0.0, "v_ablated": 1.0}


def test_kept_parts_equal_the_clean_run_exactly(batch):
    p = hand_params()
    zero = jnp.zeros((5, 2, 16))
    clean = forward(p, HAND, batch.x, batch.y)
    # Layer 1 writes only coordinate 6, which the unembedding does not read: with q, k, v kept the
    # logits are the clean ones; recomputing only k gives the fully ablated ones
    np.testing.assert_allclose(readout_logits(p, HAND, batch, zero, ""), clean, atol=1e-6)
    np.testing.assert_allclose(readout_logits(p, HAND, batch, zero, "k"), readout_logits(p, HAND, batch, zero, "qkv"),
                               atol=1e-6)
    assert not np.allclose(readout_logits(p, HAND, batch, zero, "k"), clean, atol=1e-2)


def test_mean_ablation_of_a_data_independent_layer_changes_nothing(batch):
    p = hand_params()
    _, acts = forward(p, HAND, batch.x, batch.y, cache=True)
    mean = acts["blocks.0.attn.hook_result"].mean(axis=0)  # Layer 1 here does not depend on the data
    np.testing.assert_allclose(readout_logits(p, HAND, batch, mean, "qkv"), forward(p, HAND, batch.x, batch.y), atol=1e-5)
