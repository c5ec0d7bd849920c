"""The exact reduced dynamics against the full-dimensional reference; methods and clamping."""

from __future__ import annotations

import numpy as np
import pytest

from toymodel import LossParams, RunConfig, paper_draw, simulate
from toymodel import reduced
from toymodel.metrics import COLUMNS

RTOL = 1e-10


def _assert_trajectories_agree(t1, t2, rtol=RTOL):
    """Every tracked column agrees to `rtol` relative to the column's scale (its largest value).

    Relative to the scale rather than elementwise because losses that decay to ~1e-25 are at
    float64 round-off in *both* computations, where a pointwise ratio means nothing. Likewise a
    cosine is compared only while its vector's norm is above round-off of its largest norm: a
    vector driven to |a| ~ 1e-30 has no meaningful direction in R^n (the reduced state keeps one)."""
    np.testing.assert_array_equal(t1.steps, t2.steps)
    for name in COLUMNS:
        a, b = t1.columns[name], t2.columns[name]
        if name.startswith("cos_"):
            norm = t1.columns["norm_" + name[4:]]
            keep = norm > 1e-8 * norm.max()
            a, b = a[keep], b[keep]
        scale = max(np.max(np.abs(a)), 1e-300)
        err = np.max(np.abs(a - b)) / scale
        assert err <= rtol, f"{name}: relative difference {err:.2e}"


@pytest.mark.parametrize("seed,dims,params", [
    (0, (5, 3, 4, 12), LossParams(0.1, 0.1, 0.0)),
    (1, (2, 6, 3, 9), LossParams(0.3, 0.05, 0.02)),
    (2, (7, 7, 2, 30), LossParams(0.05, 0.0, 0.1, "sum")),
])
def test_reduced_equals_full_gd_on_random_draws(x64, seed, dims, params):
    lr = 1.0 if params.aggregate == "mean" else 0.002
    draw = paper_draw(seed, dims)
    cfg = dict(method="gd", lr=lr, steps=3000, every=7)
    red = simulate(draw, params, RunConfig(space="reduced", **cfg))
    full = simulate(draw, params, RunConfig(space="full", **cfg))
    _assert_trajectories_agree(red, full)
    assert red.l1_min_step == full.l1_min_step and red.icl_steps == full.icl_steps
    # the reduced state expands to the full vectors
    p0, q0, s, basis = reduced.reduce(draw)
    v = reduced.expand(np.array(red.final_state["p"]), np.array(red.final_state["q"]), basis)
    for name, vi in zip("abcd", v):
        np.testing.assert_allclose(vi, full.final_state[name], rtol=1e-9, atol=1e-10 * np.linalg.norm(vi))


def test_reduced_equals_full_on_paper_draw():
    draw = paper_draw()
    red = simulate(draw, LossParams(), RunConfig(every=50))
    full = simulate(draw, LossParams(), RunConfig(every=50, space="full"))
    _assert_trajectories_agree(red, full)


def test_momentum_is_exact_in_reduced_space():
    draw = paper_draw(3, (4, 5, 3, 10))
    cfg = dict(method="momentum", lr=0.1, steps=2000, every=10)
    _assert_trajectories_agree(simulate(draw, config=RunConfig(space="reduced", **cfg)),
                               simulate(draw, config=RunConfig(space="full", **cfg)))


def test_optax_sgd_equals_hand_written_gd():
    draw = paper_draw(4, (4, 5, 3, 10))
    _assert_trajectories_agree(simulate(draw, config=RunConfig(method="sgd", steps=2000, every=10)),
                               simulate(draw, config=RunConfig(method="gd", steps=2000, every=10)), rtol=1e-12)


def test_every_does_not_change_the_numbers():
    draw = paper_draw(5, (4, 5, 3, 10))
    dense = simulate(draw, config=RunConfig(steps=1003, every=1))
    sparse = simulate(draw, config=RunConfig(steps=1003, every=10))
    np.testing.assert_array_equal(sparse.steps, np.r_[np.arange(0, 1001, 10), 1003])
    # the two paths compile differently (rows emitted from the loop vs. folded inside it), so
    # they agree to round-off rather than bit for bit
    np.testing.assert_allclose(dense.columns["l1"][sparse.steps], sparse.columns["l1"], rtol=1e-13)
    assert (dense.l1_min_step, dense.icl_steps) == (sparse.l1_min_step, sparse.icl_steps)
    assert dense.l1_min == pytest.approx(sparse.l1_min, rel=1e-13)
    assert dense.l1_min == dense.columns["l1"].min()


def test_flow_reduced_matches_flow_full_and_small_step_gd():
    draw = paper_draw(6, (4, 5, 3, 10))
    cfg = dict(method="flow", lr=1.0, steps=3000, every=30)
    red = simulate(draw, config=RunConfig(space="reduced", **cfg))
    full = simulate(draw, config=RunConfig(space="full", **cfg))
    assert red.solver["status"] == "successful" and red.solver["num_steps"] > 0
    _assert_trajectories_agree(red, full, rtol=1e-7)
    # gradient descent with a small step approximates the flow (error O(lr))
    gd = simulate(draw, config=RunConfig(method="gd", lr=0.05, steps=60000, every=600))
    err = np.max(np.abs(gd.columns["l1"] - red.columns["l1"])) / np.max(red.columns["l1"])
    assert err < 5e-3


def test_adam_runs_in_full_space_and_lowers_loss():
    draw = paper_draw(7, (4, 5, 3, 10))
    traj = simulate(draw, config=RunConfig(method="adam", lr=0.01, steps=2000, every=100))
    assert traj.solver["space"] == "full"
    assert traj.columns["loss"][-1] < 0.1 * traj.columns["loss"][0]


@pytest.mark.parametrize("space", ["reduced", "full"])
def test_clamped_vectors_stay_at_their_targets(space):
    draw = paper_draw()
    traj = simulate(draw, config=RunConfig(clamp=("b", "c"), steps=3000, every=100, space=space))
    for v, target in (("b", draw.target.b), ("c", draw.target.c)):
        np.testing.assert_allclose(traj.columns[f"cos_{v}"], 1.0, rtol=0, atol=1e-14)
        np.testing.assert_allclose(traj.columns[f"norm_{v}"], np.linalg.norm(target), rtol=1e-14)
    assert traj.columns["cos_a"][-1] != traj.columns["cos_a"][0]


def test_clamping_layer2_speeds_up_icl():
    """The paper's grafting analogue: with b, c at their targets ICL emerges much earlier."""
    draw = paper_draw()
    free = simulate(draw, config=RunConfig(steps=8000, every=100))
    clamped = simulate(draw, config=RunConfig(steps=8000, every=100, clamp=("b", "c")))
    assert clamped.l1_min_step < 0.5 * free.l1_min_step


def test_divergence_is_detected_and_trajectory_truncated():
    traj = simulate(paper_draw(), config=RunConfig(lr=50.0, steps=100))
    assert traj.outcome == "diverged" and traj.diverged_at is not None
    assert traj.steps[-1] < traj.diverged_at
    assert np.all(np.isfinite(traj.columns["loss"]))
