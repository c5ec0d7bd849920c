"""The exact reduced dynamics against the full-dimensional reference; methods, clamping (whole and
partial), tracked columns, stopping loss."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toymodel import clamp, reduced
from toymodel.draws import paper_draw
from toymodel.dynamics import RunConfig, simulate
from toymodel.loss import LossParams, Vectors, total_loss
from toymodel.metrics import COLUMNS

RTOL = 1e-10


def _assert_trajectories_agree(t1, t2, rtol=RTOL):
    """Every tracked column agrees to `rtol` relative to the column's scale (its largest value).

    Relative to the scale rather than elementwise because losses that decay to ~1e-25 are at
    float64 round-off in *both* computations, where a pointwise ratio means nothing. Likewise a
    cosine (and 1 − cos²) is compared only while its vector's norm is above round-off of its largest
    norm: a vector driven to |a| ~ 1e-30 has no meaningful direction in R^n (the reduced state keeps one)."""
    np.testing.assert_array_equal(t1.steps, t2.steps)
    for name in COLUMNS:
        a, b = t1.columns[name], t2.columns[name]
        if name.startswith(("cos_", "one_minus_cos2_")):
            norm = t1.columns["norm_" + name.rpartition("_")[2]]
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


# ---------------------------------------------------------------------------------------------
# partial clamps: the reduction stays exact
# ---------------------------------------------------------------------------------------------

PARTIAL = [  # (seed, dims, clamp spec, params)
    (10, (5, 6, 4, 12), ("b:3", "c:2"), LossParams(0.1, 0.1, 0.02)),
    (11, (3, 7, 5, 9), ("a:1", "d:8", "b"), LossParams(0.3, 0.05, 0.0)),
    (12, (6, 4, 4, 20), ("c:3", "d:5"), LossParams(0.05, 0.0, 0.1, "sum")),
]


def _expanded_final(traj, draw, spec):
    _, _, _, basis = reduced.reduce(draw, clamp.counts(spec, draw.dims))
    return reduced.expand(np.array(traj.final_state["p"]), np.array(traj.final_state["q"]), basis)


@pytest.mark.parametrize("method", ["gd", "momentum"])
@pytest.mark.parametrize("seed,dims,spec,params", PARTIAL)
def test_partial_clamp_reduced_equals_full(x64, seed, dims, spec, params, method):
    lr = (1.0 if method == "gd" else 0.1) * (1.0 if params.aggregate == "mean" else 0.0005)
    draw = paper_draw(seed, dims)
    cfg = dict(method=method, lr=lr, steps=2500, every=7, clamp=spec)
    red = simulate(draw, params, RunConfig(space="reduced", **cfg))
    full = simulate(draw, params, RunConfig(space="full", **cfg))
    assert red.solver["space"] == "reduced" and red.diverged_at is None
    _assert_trajectories_agree(red, full)
    assert (red.l1_min_step, red.icl_steps) == (full.l1_min_step, full.icl_steps)
    counts = clamp.counts(spec, dims)
    for name, v, k, t, v0 in zip("abcd", _expanded_final(red, draw, spec), counts, draw.target, draw.init):
        full_v, t, v0 = np.asarray(full.final_state[name]), np.asarray(t), np.asarray(v0)
        np.testing.assert_allclose(v, full_v, rtol=1e-9, atol=1e-10 * np.linalg.norm(v))
        np.testing.assert_array_equal(full_v[:k], t[:k])  # clamped coordinates never moved
        np.testing.assert_allclose(np.asarray(v)[:k], t[:k], rtol=1e-15)
        if 0 < k < len(t):  # ... while the free ones did
            assert not np.allclose(full_v[k:], v0[k:])


@pytest.mark.parametrize("seed,dims,spec,params", PARTIAL[:2])
def test_partial_clamp_flow_reduced_equals_full(seed, dims, spec, params):
    draw = paper_draw(seed, dims)
    cfg = dict(method="flow", steps=1500, every=30, clamp=spec, rtol=1e-13, atol=1e-15)
    red = simulate(draw, params, RunConfig(space="reduced", **cfg))
    full = simulate(draw, params, RunConfig(space="full", **cfg))
    assert red.solver["status"] == full.solver["status"] == "successful"
    _assert_trajectories_agree(red, full)


def test_partial_clamp_default_path_is_reduced_and_between_the_extremes():
    """Half of b and c clamped on the paper's draw: reduced by default; ICL peaks earlier than free."""
    draw = paper_draw()
    runs = {spec: simulate(draw, config=RunConfig(steps=8000, every=50, clamp=spec))
            for spec in ((), ("b:10", "c:10"), ("b", "c"))}
    assert runs[("b:10", "c:10")].solver["space"] == "reduced"
    steps = [runs[spec].l1_min_step for spec in runs]
    assert steps[2] < steps[1] < steps[0]


def test_clamp_counts_and_bad_specs():
    assert clamp.counts(("b:10", "c"), (20, 20, 20, 160)) == (0, 10, 20, 0)
    assert clamp.counts((), (3, 4, 5, 6)) == (0, 0, 0, 0)
    for bad in (("b:0",), ("e:3",), ("b:x",), ("b:10", "b:5"), ("b", "b"), ("",)):
        with pytest.raises(ValueError):
            clamp.counts(bad, (20, 20, 20, 160))
    with pytest.raises(ValueError, match="n_b=20"):
        clamp.counts(("b:21",), (20, 20, 20, 160))


# ---------------------------------------------------------------------------------------------
# tracked columns: gradient norms, distances, 1 - cos²
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [(), ("b:3", "c"), ("a:2", "d:4")])
def test_tracked_columns_against_autodiff_at_the_final_state(x64, spec):
    """grad_norm, dist and one_minus_cos2 of the reduced path's last row, against jax.grad of the
    tensor loss and direct vector arithmetic at the expanded state (free coordinates only)."""
    draw = paper_draw(13, (5, 6, 4, 12))
    params = LossParams(0.2, 0.05, 0.01)
    traj = simulate(draw, params, RunConfig(steps=300, every=50, clamp=spec))
    v = Vectors(*map(jnp.asarray, _expanded_final(traj, draw, spec)))
    grad = jax.grad(total_loss)(v, draw.target, params)
    mask = clamp.free_mask(draw.dims, clamp.counts(spec, draw.dims))
    for name, vi, ti, gi, mi in zip("abcd", v, draw.target, grad, mask):
        vi, ti, gi = np.asarray(vi), np.asarray(ti), np.asarray(gi)
        cos2 = (vi @ ti) ** 2 / ((vi @ vi) * (ti @ ti))
        assert traj.final(f"grad_norm_{name}") == pytest.approx(np.linalg.norm(gi * mi), rel=1e-9)
        assert traj.final(f"dist_{name}") == pytest.approx(np.linalg.norm(vi - ti), rel=1e-9)
        assert traj.final(f"one_minus_cos2_{name}") == pytest.approx(1 - cos2, rel=1e-7, abs=1e-14)
    if "c" in spec:  # wholly clamped: no update, at the target
        assert traj.final("grad_norm_c") == 0 and traj.final("dist_c") == 0 and traj.final("one_minus_cos2_c") == 0


def test_tracked_distances_are_accurate_near_the_target():
    """|v − v*| and 1 − cos² from the reduced state do not cancel: on the paper's draw L2 → 1e-26,
    where y s − x² in floating point would be pure round-off, yet d's 1 − cos² keeps shrinking."""
    traj = simulate(paper_draw(), config=RunConfig(steps=16000, every=1000))
    one_minus = traj.columns["one_minus_cos2_d"]
    assert one_minus[-1] < 1e-20 and np.all(np.diff(one_minus[5:]) < 0)
    assert traj.columns["dist_d"][-1] > 0


# ---------------------------------------------------------------------------------------------
# stopping loss
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("every,method,space", [(1, "gd", "reduced"), (7, "gd", "reduced"), (7, "momentum", "full"),
                                                (10, "flow", "reduced")])
def test_stop_at_loss_ends_at_the_first_step_below(every, method, space):
    draw = paper_draw(14, (4, 5, 3, 10))
    params = LossParams(0.1, 0.1, 0.0)
    lr = 0.1 if method == "momentum" else 1.0
    cfg = dict(method=method, lr=lr, steps=3000, space=space)
    dense = simulate(draw, params, RunConfig(every=1 if method != "flow" else every, **cfg))
    loss = dense.columns["loss"]
    threshold = 0.5 * (loss[0] + loss[-1])  # crossed somewhere in the middle
    first = int(dense.steps[np.argmax(loss < threshold)])
    assert 0 < first < 3000
    traj = simulate(draw, params, RunConfig(every=every, stop_at_loss=threshold, **cfg))
    assert traj.stopped_at == first and traj.steps[-1] == first
    assert traj.columns["loss"][-1] < threshold and np.all(traj.columns["loss"][:-1] >= threshold)
    upto = dense.steps <= first
    np.testing.assert_allclose(traj.final("l1"), dense.columns["l1"][upto][-1], rtol=1e-12)
    # the summaries count only the steps up to the stop
    assert traj.l1_min == pytest.approx(dense.columns["l1"][upto].min(), rel=1e-12)
    if method != "flow":
        assert traj.icl_steps == int(np.sum(dense.columns["l1"][upto] <= 0.1 * dense.l1_ref))


def test_stop_at_loss_never_reached_changes_nothing():
    draw = paper_draw(15, (4, 5, 3, 10))
    plain = simulate(draw, config=RunConfig(steps=1000, every=10))
    stopped = simulate(draw, config=RunConfig(steps=1000, every=10, stop_at_loss=0.0))
    assert stopped.stopped_at is None and (stopped.l1_min_step, stopped.icl_steps) == (plain.l1_min_step, plain.icl_steps)
    np.testing.assert_array_equal(plain.steps, stopped.steps)
    for name in COLUMNS:  # the loop compiles differently with a stop: equal to round-off
        np.testing.assert_allclose(plain.columns[name], stopped.columns[name], rtol=1e-13, atol=1e-300)


def test_one_fusion_returns_its_inputs_bit_for_bit(x64):
    from toymodel import kernel

    floats = jnp.asarray([0.0, -0.0, 1.5, -jnp.inf, jnp.inf, jnp.nan, 5e-324, -1e308])
    ints = jnp.asarray([0, -1, 7, np.iinfo(np.int64).min, np.iinfo(np.int64).max, 3, 2, 1])
    out = jax.jit(kernel.one_fusion)((floats, (ints, 2.0 * floats)))
    assert np.asarray(out[0]).tobytes() == np.asarray(floats).tobytes()  # -0.0 and nan kept as they are
    assert np.asarray(out[1][1]).tobytes() == np.asarray(2.0 * floats).tobytes()
    assert np.array_equal(out[1][0], ints) and out[1][0].dtype == ints.dtype


def test_fused_advance_follows_the_unfused_loop(x64):
    """The sweep's fused loop (`fused=True`) is the same arithmetic as the plain one: the folded step
    counts agree exactly and the state to the last bits, on a batch of lanes as the sweep runs them."""
    from toymodel import kernel

    draw = paper_draw()
    p0, q0, s, _ = reduced.reduce(draw)
    base = reduced.constants(s, draw.dims, LossParams())
    alpha, mu1 = jnp.linspace(0.0, 1.0, 64), jnp.linspace(1.0, 0.0, 64)

    def run(fused):
        def lane(a, m):
            const = reduced.Constants(base.s, jnp.concatenate([base.coeffs[:3], jnp.stack([a, m, 0.0])]))
            step = kernel.gd_step(const, (1.0,) * 4)
            observe = lambda st: reduced.loss_terms(st[0], st[1], const)  # noqa: E731
            state0 = (tuple(jnp.asarray(v) for v in p0), tuple(jnp.asarray(v) for v in q0))
            return kernel.advance(step, observe, kernel.start(state0), 3000, 0.02, finite=False, unroll=2, fused=fused)
        return jax.jit(jax.vmap(lane))(alpha, mu1)

    plain, fused = run(False), run(True)
    np.testing.assert_array_equal(fused.fold.l1_min_step, plain.fold.l1_min_step)
    np.testing.assert_array_equal(fused.fold.icl_steps, plain.fold.icl_steps)
    assert np.all(fused.t == 3000)
    for a, b in zip(jax.tree_util.tree_leaves(fused.state), jax.tree_util.tree_leaves(plain.state)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)
