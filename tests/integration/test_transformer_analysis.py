"""Mechanistic analysis: measures on hand-built attention, ablation, grafting, clamped training, CLI errors."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from transformer.analysis import (
    Run,
    ablated_scores,
    graft,
    induction_strength,
    layer1_outputs,
    layer1_attention,
    progress_measures,
    second_label_attention,
)
from transformer.data import gaussian_clusters, sample
from transformer.evaluate import evaluate_all
from transformer.model import ModelConfig, forward, init_params
from transformer.checkpoints import load_checkpoint
from transformer.config import TrainConfig
from transformer.train import train

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


TINY = TrainConfig(classes=16, dim=8, d_model=16, heads=2, batch=8, sequences=2 * 800, eval_every=800, eval_size=200,
                   noise=0.3, lr=3e-3, seed=3, stop_when_icl_below=0.0)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "source"
    train(TINY, out, progress=False)
    return out


def test_grafting_identical_checkpoints_changes_nothing(tiny_run):
    run = Run(tiny_run)
    a = run.params(run.steps[-1])
    for layer in (1, 2):
        same = graft(a, run.params(run.steps[-1]), layer)
        assert all(np.array_equal(same[k], a[k]) for k in a)
    b = run.params(run.steps[0])
    mixed = graft(a, b, 2)  # exactly Layer 2's parameters come from b
    for k in a:
        assert np.array_equal(mixed[k], b[k] if k.startswith("blocks.1.") else a[k]), k
    assert any(not np.array_equal(a[k], b[k]) for k in a if k.startswith("blocks.1."))


def test_the_papers_cut_splits_the_parameters_in_two(tiny_run):
    from transformer.config import in_layer

    run = Run(tiny_run)
    a, b = run.params(run.steps[-1]), run.params(run.steps[0])
    first = {k for k in a if in_layer(k, "first_half")}
    second = {k for k in a if in_layer(k, "second_half")}
    assert first | second == set(a) and not first & second
    assert {"embed.W_x", "embed.b_x", "pos.W_pos"} <= first and {k for k in a if k.startswith("blocks.0.")} <= first
    assert in_layer("labels.W_L", "first_half")  # an untied label table is an embedding
    assert {"unembed.W_U", "unembed.b_U", "ln_final.w", "ln_final.b"} <= second
    assert {k for k in a if k.startswith("blocks.1.")} <= second
    mixed = graft(a, b, "second_half")
    assert all(np.array_equal(mixed[k], b[k] if k in second else a[k]) for k in a)


def test_frozen_layer_stays_bit_identical(tiny_run, tmp_path):
    source_step = Run(tiny_run).steps[1]
    source = f"{tiny_run}@{source_step}"
    cfg = dataclasses.replace(TINY, train_dist="icl_only", seed=4, init_layer=f"2={source},embed={source}", freeze_layer="2,embed")
    train(cfg, tmp_path / "clamped", progress=False)
    src, _ = load_checkpoint(tiny_run, TINY, source_step)
    end, _ = load_checkpoint(tmp_path / "clamped", cfg, None)
    start, _ = load_checkpoint(tmp_path / "clamped", cfg, 0)
    clamped = [k for k in end if not k.startswith("blocks.0.")]  # Layer 2 and the embeddings
    assert "blocks.1.attn.W_Q" in clamped and "unembed.W_U" in clamped and "pos.W_pos" in clamped
    assert all(np.array_equal(end[k], src[k]) and np.array_equal(start[k], src[k]) for k in clamped)
    fresh = init_params(jax.random.fold_in(jax.random.PRNGKey(4), 1), TINY.model_config())  # the seed's own init
    for k in end:
        if k.startswith("blocks.0.attn."):  # Layer 1 starts from the seed and trains
            assert np.array_equal(start[k], fresh[k]) and not np.array_equal(end[k], start[k]), k


def test_cli_bad_inputs(coop_inprocess, tiny_run, tmp_path):
    cases = [
        (["transformer", "analyze", tmp_path / "nothing", "--out", tmp_path / "a"], "RUN_DIR"),
        (["transformer", "graft", tiny_run, "--layer", "3", "--out", tmp_path / "g"], "--layer"),
        (["transformer", "graft", tiny_run, "--layer", "third_half", "--out", tmp_path / "g"], "--layer"),
        (["transformer", "train", "--out", tmp_path / "t", "--freeze-layer", "second"], "--freeze-layer"),
        (["transformer", "train", "--out", tmp_path / "t", "--classes", "16", "--init-layer", f"second_half={tiny_run}"], "--init-layer"),
        (["transformer", "graft", tiny_run, "--layer", "1", "--checkpoints", "1", "--out", tmp_path / "g"], "--checkpoints"),
        (["transformer", "analyze", tiny_run, "--ablate-at", "123", "--out", tmp_path / "a"], "--ablate-at"),
        (["transformer", "train", "--out", tmp_path / "t", "--init-layer", "2=nowhere@5"], "--init-layer"),
        (["transformer", "train", "--out", tmp_path / "t", "--init-layer", f"2={tiny_run}@7"], "--init-layer"),
        (["transformer", "train", "--out", tmp_path / "t", "--init-layer", f"3={tiny_run}"], "--init-layer"),
        (["transformer", "train", "--out", tmp_path / "t", "--freeze-layer", "0"], "--freeze-layer"),
        (["transformer", "curves", tmp_path / "nothing", "--out", tmp_path / "c.png"], "RUN_DIR"),
    ]
    for args, param in cases:
        code, out, err = coop_inprocess(*args)
        assert code == 2 and err.count("\n") == 1 and param in err, (args, err)
    assert not (tmp_path / "a").exists() and not (tmp_path / "g").exists() and not (tmp_path / "t").exists()


def test_analyze_graft_and_curves_commands(coop_inprocess, tiny_run, tmp_path):
    code, out, err = coop_inprocess("transformer", "analyze", tiny_run, "--out", tmp_path / "an")
    assert code == 0, err
    for name in ("progress.csv", "progress.png", "ablation.csv", "ablation.png"):
        assert (tmp_path / "an" / name).is_file()
    code, out, err = coop_inprocess("transformer", "graft", tiny_run, "--layer", "2", "--out", tmp_path / "gr")
    assert code == 0, err
    rows = np.genfromtxt(tmp_path / "gr" / "graft.csv", delimiter=",", names=True)
    assert len(rows) == 9  # 3 checkpoints squared
    diag = rows[rows["source_step"] == rows["target_step"]]
    metrics = {int(r["step"]): r for r in np.genfromtxt(tiny_run / "metrics.csv", delimiter=",", names=True)}
    for r in diag:  # the diagonal is the run itself: its metrics rows
        assert r["flip_acc"] == pytest.approx(metrics[int(r["target_step"])]["flip_acc"], abs=1e-6)
    code, out, err = coop_inprocess("transformer", "curves", tiny_run, tiny_run, "--labels", "a,b", "--out", tmp_path / "c.png")
    assert code == 0 and (tmp_path / "c.png").is_file(), err
