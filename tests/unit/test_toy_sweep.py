"""The sweep engine: agreement with single runs, analytic limits, shards, merge, resume, bad SPECs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from toymodel.draws import paper_draw
from toymodel.dynamics import RunConfig, simulate
from toymodel.loss import LossParams
from toymodel.outcomes import OUTCOMES
from toymodel.sweep import SweepConfig, assemble, chunk_path, parse_axis, run_sweep, write_results


def test_parse_axis():
    np.testing.assert_array_equal(parse_axis("0.1"), [0.1])
    np.testing.assert_array_equal(parse_axis("0,0.05,0.2"), [0, 0.05, 0.2])
    np.testing.assert_allclose(parse_axis("0:1:5"), [0, 0.25, 0.5, 0.75, 1])
    for bad in ("1:0:3", "0:1:1", "0:1", "nan", "-1", "0,inf", "a", "", "0:1:2:3"):
        with pytest.raises(ValueError):
            parse_axis(bad)


def test_sweep_matches_single_runs(tmp_path):
    config = SweepConfig((0.0, 0.1, 0.4), (0.0, 0.1, 0.5), (0.0, 0.05), steps=6000, chunk=5)
    run_sweep(config, tmp_path)
    res = assemble(config, [tmp_path])
    draw = paper_draw()
    rng = np.random.default_rng(0)
    for _ in range(5):
        i, j, k = (int(rng.integers(n)) for n in config.shape)
        traj = simulate(draw, LossParams(config.alpha[i], config.mu1[j], config.mu2[k]),
                        RunConfig(steps=config.steps, every=100))
        assert OUTCOMES[res["outcome"][i, j, k]] == traj.outcome
        assert res["l1_min"][i, j, k, 0] == pytest.approx(traj.l1_min, rel=1e-9)
        assert res["l1_final"][i, j, k, 0] == pytest.approx(traj.final("l1"), rel=1e-8, abs=1e-12)
        assert res["l2_final"][i, j, k, 0] == pytest.approx(traj.final("l2"), rel=1e-8, abs=1e-12)
        if res["stopped_at"][i, j, k, 0] == config.steps:  # ran to the end: exact step counts
            assert res["l1_min_step"][i, j, k, 0] == traj.l1_min_step
            assert res["icl_steps"][i, j, k, 0] == traj.icl_steps
        else:  # settled early: the counts extrapolate the last BLOCK steps' state
            assert abs(res["icl_steps"][i, j, k, 0] - traj.icl_steps) <= 1


@pytest.mark.parametrize("draws", [1, 2])
def test_clamped_sweep_matches_clamped_single_runs(tmp_path, draws):
    config = SweepConfig((0.05, 0.3), (0.0, 0.1), (0.0,), steps=4000, draws=draws, chunk=3, clamp=("b:10", "c"))
    run_sweep(config, tmp_path)
    res = assemble(config, [tmp_path])
    for i, j, d in ((0, 1, 0), (1, 0, draws - 1), (1, 1, 0)):
        traj = simulate(paper_draw(config.seed + d), LossParams(config.alpha[i], config.mu1[j], 0.0),
                        RunConfig(steps=config.steps, every=100, clamp=config.clamp))
        assert OUTCOMES[res["outcome_per_draw"][i, j, 0, d]] == traj.outcome
        assert res["l1_min"][i, j, 0, d] == pytest.approx(traj.l1_min, rel=1e-9)
        assert res["l2_final"][i, j, 0, d] == pytest.approx(traj.final("l2"), rel=1e-8, abs=1e-12)
    unclamped = SweepConfig(config.alpha, config.mu1, config.mu2, steps=config.steps, draws=draws, chunk=3)
    run_sweep(unclamped, tmp_path / "free")
    assert not np.allclose(assemble(unclamped, [tmp_path / "free"])["l1_min"], res["l1_min"])


def test_sweep_digest_includes_the_clamp_and_keeps_unclamped_folders():
    base = SweepConfig((0.0, 0.2, 0.4), (0.1,), (0.0,), steps=1000, chunk=1)
    assert base.digest() == "1432b358445f9da3"  # as before clamping existed: old folders still resume
    digests = {SweepConfig(base.alpha, base.mu1, base.mu2, steps=1000, chunk=1, clamp=c).digest()
               for c in ((), ("b",), ("b:10",), ("b:10", "c"))}
    assert len(digests) == 4
    assert SweepConfig.from_dict(SweepConfig((0.1,), (0.1,), (0.0,), clamp=("b:10",)).to_dict()).clamp == ("b:10",)


def test_analytic_limits(tmp_path):
    """mu1 = 0 < mu2: CIWL's offset keeps pulling on a (H_a = k1 (L2 + mu2) X_b X_c > 0) while nothing
    does so for d once L1 = 0, so ICL is learned and stays: persistent_icl. mu1 > 0 = mu2 with
    alpha > 0: at the CIWL state W1 = k1 L2 = 0, so only the competition acts on a and shrinks it
    to 0; ICL cannot persist and L1 ends at its zero-mechanism value."""
    config = SweepConfig((0.05, 0.1, 0.3), (0.0, 0.1, 0.3), (0.0, 0.1), steps=30000, chunk=64)
    run_sweep(config, tmp_path)
    res = assemble(config, [tmp_path])
    names = np.array(OUTCOMES)[res["outcome"]]
    assert np.all(names[:, 0, 1] == "persistent_icl")  # mu1 = 0 < mu2
    mu1_pos_mu2_zero = names[:, 1:, 0]
    assert set(mu1_pos_mu2_zero.ravel()) <= {"transient_icl", "ciwl_only"}
    r1_end = res["l1_final"][:, 1:, 0, 0] / res["l1_ref"][0]
    np.testing.assert_allclose(r1_end, 1.0, atol=1e-3)


def test_shards_merge_to_the_one_shot_result(tmp_path, coop_inprocess):
    args = ["toy", "sweep", "--alpha", "0:0.4:5", "--mu1", "0:0.4:4", "--steps", "2000", "--chunk", "6"]
    assert coop_inprocess(*args, "--out", tmp_path / "one")[0] == 0
    for i in range(3):
        assert coop_inprocess(*args, "--shard", f"{i}/3", "--out", tmp_path / f"s{i}")[0] == 0
    assert not (tmp_path / "s0" / "sweep.npz").exists()  # a shard alone is not a result
    code, out, err = coop_inprocess("toy", "merge", tmp_path / "s0", tmp_path / "s1", tmp_path / "s2",
                                    "--out", tmp_path / "merged")
    assert code == 0, err
    with np.load(tmp_path / "one" / "sweep.npz") as a, np.load(tmp_path / "merged" / "sweep.npz") as b:
        assert set(a.files) == set(b.files)
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    info = json.loads((tmp_path / "one" / "sweep.json").read_text())
    assert info["outcomes"] == list(OUTCOMES) and info["varying_axes"] == ["alpha", "mu1"]
    assert (tmp_path / "one" / "phase_diagram.png").stat().st_size > 10_000
    # merging an incomplete set is refused
    code, _, err = coop_inprocess("toy", "merge", tmp_path / "s0", "--out", tmp_path / "bad")
    assert code == 2 and "missing" in err


def test_shards_past_the_chunks_are_empty_and_merge(tmp_path, coop_inprocess):
    """A 3-task array over a 1-chunk sweep: tasks 1 and 2 have no chunk; they succeed with an empty
    shard, and the three merge to exactly the one-shot result."""
    args = ["toy", "sweep", "--alpha", "0:0.4:3", "--mu1", "0.1", "--steps", "1000"]
    assert coop_inprocess(*args, "--out", tmp_path / "one")[0] == 0
    for i in range(3):
        code, out, err = coop_inprocess(*args, "--shard", f"{i}/3", "--out", tmp_path / f"s{i}")
        assert code == 0, err
    assert not list((tmp_path / "s2").glob("chunks/*"))
    code, _, err = coop_inprocess("toy", "merge", tmp_path / "s0", tmp_path / "s1", tmp_path / "s2", "--out", tmp_path / "m")
    assert code == 0, err
    with np.load(tmp_path / "one" / "sweep.npz") as a, np.load(tmp_path / "m" / "sweep.npz") as b:
        assert set(a.files) == set(b.files) and all(np.array_equal(a[k], b[k]) for k in a.files)


def test_resume_skips_finished_chunks_and_refuses_another_sweep(tmp_path, coop_inprocess):
    config = SweepConfig((0.0, 0.2, 0.4), (0.1,), (0.0,), steps=1000, chunk=1)
    first = run_sweep(config, tmp_path)
    assert first["chunks_computed"] == 3
    before = chunk_path(tmp_path, 0).read_bytes()
    chunk_path(tmp_path, 1).unlink()  # as if killed while computing chunk 1
    second = run_sweep(config, tmp_path)
    assert second["chunks_computed"] == 1
    assert chunk_path(tmp_path, 0).read_bytes() == before
    write_results(config, [tmp_path], tmp_path)
    code, _, err = coop_inprocess("toy", "sweep", "--alpha", "0.3", "--steps", "1000", "--out", tmp_path)
    assert code == 2 and "--out" in err and "different sweep" in err
    # the same axes with a clamp are another sweep too
    code, _, err = coop_inprocess("toy", "sweep", "--alpha", "0,0.2,0.4", "--steps", "1000", "--chunk", "1",
                                  "--clamp", "b:10", "--out", tmp_path)
    assert code == 2 and "different sweep" in err


def test_draw_fractions(tmp_path):
    config = SweepConfig((0.1,), (0.05, 0.3), (0.0,), steps=3000, draws=4, chunk=3)
    run_sweep(config, tmp_path)
    res = assemble(config, [tmp_path])
    assert res["outcome_fraction"].shape == (1, 2, 1, len(OUTCOMES))
    np.testing.assert_allclose(res["outcome_fraction"].sum(-1), 1.0)
    assert res["l1_min"].shape == (1, 2, 1, 4)
    # draw 0 is the paper's draw: its metrics equal a one-draw sweep's
    single = SweepConfig((0.1,), (0.05, 0.3), (0.0,), steps=3000, chunk=3)
    run_sweep(single, tmp_path / "single")
    np.testing.assert_allclose(res["l1_min"][..., 0], assemble(single, [tmp_path / "single"])["l1_min"][..., 0], rtol=1e-12)


BAD = [
    (["--alpha", "0.5:0.1:4"], "--alpha"),
    (["--mu1", "0:1:1"], "--mu1"),
    (["--mu2", "nan"], "--mu2"),
    (["--alpha", "-0.1"], "--alpha"),
    (["--shard", "2/2"], "--shard"),
    (["--shard", "x"], "--shard"),
    (["--steps", "0"], "--steps"),
    (["--draws", "0"], "--draws"),
    (["--dims", "1,2,3"], "--dims"),
    (["--clamp", "b:21"], "--clamp"),
    (["--clamp", "e:3"], "--clamp"),
    (["--clamp", "b:10,b:5"], "--clamp"),
    (["--frobnicate"], "--frobnicate"),
]


@pytest.mark.parametrize("args,param", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_specs(tmp_path, coop_inprocess, args, param):
    code, _, err = coop_inprocess("toy", "sweep", *args, "--out", tmp_path / "out")
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and param in err
    assert not (tmp_path / "out").exists()


def test_divergence_is_recorded(tmp_path):
    """lr 50 blows up within a few steps (as in `simulate`); the sweep records it at a block end."""
    config = SweepConfig((0.1,), (0.1, 0.2), (0.0,), steps=1000, lr=50.0, chunk=2)
    run_sweep(config, tmp_path)
    res = assemble(config, [tmp_path])
    assert np.all(res["diverged_at"] > 0) and np.all(res["diverged_at"] <= 1000)
    assert np.all(res["stopped_at"] < 1000)  # the lanes stopped at the divergence


def test_sweep_lanes_equal_the_per_point_baseline_and_do_not_depend_on_batching(tmp_path, monkeypatch):
    """The vmapped, compacted kernel computes per lane what the per-point scan (`dynamics.gd_scan`,
    the same kernel, no early exit; the baseline of benchmarks/bench_sweep.py) computes: equal
    outcomes, L1 minima to 1e-12 relative, exact step counts for lanes that ran to the end. And the
    batching (chunk size, rounds between compactions) changes no outcome or count, and the losses by
    at most 1e-12 relative (other batch widths compile to other vector code; CI measured 4e-16)."""
    import jax
    import jax.numpy as jnp

    from toymodel import reduced, sweep
    from toymodel.dynamics import REDUCED, gd_scan
    from toymodel.outcomes import LEARNED, classify

    config = SweepConfig((0.02, 0.1, 0.6), (0.0, 0.03, 0.3), (0.0, 0.01), steps=3000, chunk=7)
    run_sweep(config, tmp_path / "a")
    res = assemble(config, [tmp_path / "a"])
    monkeypatch.setattr(sweep, "ROUND", 1)  # compaction after every block instead of every ROUND
    monkeypatch.setattr(sweep, "_KERNELS", {})
    rebatched = SweepConfig(config.alpha, config.mu1, config.mu2, steps=config.steps, chunk=18)
    run_sweep(rebatched, tmp_path / "b")
    other = assemble(rebatched, [tmp_path / "b"])
    for k in (*sweep.METRICS, "outcome"):  # batches of other widths compile to other vector code: last bits may differ
        if np.issubdtype(np.asarray(res[k]).dtype, np.floating):
            np.testing.assert_allclose(res[k], other[k], rtol=1e-12, atol=0, err_msg=k)
        else:
            np.testing.assert_array_equal(res[k], other[k], err_msg=k)

    draw = paper_draw()
    p0, q0, s, _ = reduced.reduce(draw)
    l1_ref, l2_ref = float(res["l1_ref"][0]), float(res["l2_ref"][0])
    ones = jnp.ones(4)
    with jax.enable_x64(True):
        base = reduced.constants(s, draw.dims, LossParams())

        @jax.jit
        def one_point(coeffs):  # one compiled scan, as the benchmark's baseline
            const = reduced.Constants(base.s, base.coeffs.at[3:].set(coeffs))
            records, _, acc = gd_scan(REDUCED, (jnp.asarray(p0), jnp.asarray(q0)), consts=const, lr=1.0,
                                      mask=(ones, ones), l1_threshold=LEARNED * l1_ref, steps=config.steps,
                                      every=config.steps)
            return records[-1], acc

        for i, j, k in ((0, 0, 0), (1, 1, 0), (2, 2, 1), (0, 2, 1), (2, 0, 0)):
            final, acc = one_point(jnp.asarray([config.alpha[i], config.mu1[j], config.mu2[k]]))
            outcome = int(classify(float(acc.l1_min), float(final[1]), float(final[2]), l1_ref, l2_ref))
            assert res["outcome"][i, j, k] == outcome
            assert res["l1_min"][i, j, k, 0] == pytest.approx(float(acc.l1_min), rel=1e-12)
            if res["stopped_at"][i, j, k, 0] == config.steps:  # ran to the end: the same numbers
                assert res["l1_min_step"][i, j, k, 0] == int(acc.l1_min_step)
                assert res["icl_steps"][i, j, k, 0] == int(acc.icl_steps)
                assert res["l1_final"][i, j, k, 0] == pytest.approx(float(final[1]), rel=1e-12)
                assert res["l2_final"][i, j, k, 0] == pytest.approx(float(final[2]), rel=1e-12, abs=1e-300)
