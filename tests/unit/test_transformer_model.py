"""The transformer: shapes, named activations, causality, hooks, tied and untied labels."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from transformer.model import ModelConfig, forward, init_params, label_table_name

CFG = ModelConfig(classes=11, dim=6)


@pytest.fixture(scope="module")
def setup():
    params = init_params(jax.random.PRNGKey(0), CFG)
    # give the position embedding and layer norms some scale so every path matters
    params = {k: v + 0.3 * jax.random.normal(jax.random.PRNGKey(len(k)), v.shape) for k, v in params.items()}
    x = jax.random.normal(jax.random.PRNGKey(1), (4, 3, CFG.dim))
    y = jax.random.randint(jax.random.PRNGKey(2), (4, 2), 0, CFG.classes)
    return params, x, y


def test_shapes_and_named_activations(setup):
    params, x, y = setup
    logits, acts = forward(params, CFG, x, y, cache=True)
    assert logits.shape == (4, CFG.classes)
    H, T, M = CFG.heads, 5, CFG.d_model
    for l in range(CFG.layers):
        pat = np.asarray(acts[f"blocks.{l}.attn.hook_pattern"])
        assert pat.shape == (4, H, T, T)
        assert np.allclose(pat.sum(-1), 1, atol=1e-5)
        assert np.all(pat[:, :, np.triu_indices(T, 1)[0], np.triu_indices(T, 1)[1]] == 0)  # causal
        assert acts[f"blocks.{l}.attn.hook_z"].shape == (4, T, H, CFG.d_head)
        res = acts[f"blocks.{l}.attn.hook_result"]
        assert res.shape == (4, T, H, M)
        assert np.allclose(res.sum(2), acts[f"blocks.{l}.hook_attn_out"], atol=1e-5)
    assert np.allclose(logits, forward(params, CFG, x, y), atol=1e-5)


def test_causality(setup):
    """Changing a token never changes any activation at an earlier position."""
    params, x, y = setup
    _, base = forward(params, CFG, x, y, cache=True)
    changes = {1: (x, y.at[:, 0].set((y[:, 0] + 1) % CFG.classes)),  # y1 at position 1
               2: (x.at[:, 1].add(1.0), y),  # x2 at position 2
               3: (x, y.at[:, 1].set((y[:, 1] + 1) % CFG.classes)),  # y2 at position 3
               4: (x.at[:, 2].add(1.0), y)}  # xq at position 4
    for pos, (x2, y2) in changes.items():
        _, new = forward(params, CFG, x2, y2, cache=True)
        for l in range(CFG.layers):
            a, b = np.asarray(base[f"blocks.{l}.hook_resid_post"]), np.asarray(new[f"blocks.{l}.hook_resid_post"])
            assert np.allclose(a[:, :pos], b[:, :pos], atol=1e-6), (pos, l)
            assert not np.allclose(a[:, pos], b[:, pos]), (pos, l)  # the change itself is seen


def test_hooks_intervene(setup):
    params, x, y = setup
    zero = lambda a: jnp.zeros_like(a)  # noqa: E731
    base = forward(params, CFG, x, y)
    ablated = forward(params, CFG, x, y, hooks={"blocks.1.hook_attn_out": zero})
    assert not np.allclose(base, ablated)
    # zeroing every head's result equals zeroing the summed output
    via_heads = forward(params, CFG, x, y, hooks={"blocks.1.attn.hook_result": zero})
    assert np.allclose(ablated, via_heads, atol=1e-5)


def test_tied_and_untied_labels():
    tied = init_params(jax.random.PRNGKey(0), CFG)
    ucfg = ModelConfig(classes=11, dim=6, tie_labels=False)
    untied = init_params(jax.random.PRNGKey(0), ucfg)
    assert "labels.W_L" not in tied and label_table_name(CFG) == "unembed.W_U"
    assert float(jnp.abs(tied["unembed.W_U"]).max()) <= 0.04 + 1e-6  # the label init (std 0.02) when tied
    assert untied["labels.W_L"].shape == (11, 64) and label_table_name(ucfg) == "labels.W_L"
    assert float(jnp.abs(untied["labels.W_L"]).max()) <= 0.04 + 1e-6  # truncated normal, std 0.02
    x = jnp.ones((1, 3, 6))
    y = jnp.array([[3, 5]])
    # in the tied model the label table is the unembedding: moving row 3 changes the label-3 token
    _, a = forward(tied, CFG, x, y, cache=True)
    _, b = forward({**tied, "unembed.W_U": tied["unembed.W_U"].at[3].add(1.0)}, CFG, x, y, cache=True)
    assert not np.allclose(a["hook_embed"][:, 1], b["hook_embed"][:, 1])
    _, c = forward({**untied, "unembed.W_U": untied["unembed.W_U"].at[3].add(1.0)}, ucfg, x, y, cache=True)
    _, d = forward(untied, ucfg, x, y, cache=True)
    assert np.allclose(c["hook_embed"], d["hook_embed"])


def test_positional_init_official_uniform_or_normal():
    """Official positional table: uniform in ±1/sqrt(32) (a 32-position linear layer); or N(0, 0.02²)."""
    cfg = ModelConfig(classes=8, dim=4)
    w = np.asarray(init_params(jax.random.PRNGKey(0), cfg)["pos.W_pos"])
    lim = 1 / np.sqrt(32)
    assert np.abs(w).max() <= lim and np.abs(w).max() > 0.9 * lim
    assert abs(w.std() - lim / np.sqrt(3)) < 0.15 * lim / np.sqrt(3)  # std of U(-l, l) is l/sqrt(3) ~ 0.10
    n = np.asarray(init_params(jax.random.PRNGKey(0), dataclasses.replace(cfg, pos_init="normal"))["pos.W_pos"])
    assert abs(n.std() - 0.02) < 0.004
