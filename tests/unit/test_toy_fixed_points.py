"""Fixed points against where long trajectories end; the symmetry mode; portraits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from toymodel import reduced
from toymodel.analysis import classify, closed_form_checks, fixed_points
from toymodel.draws import paper_draw
from toymodel.dynamics import RunConfig, simulate
from toymodel.loss import LossParams


@pytest.fixture(scope="module")
def draw_s():
    draw = paper_draw()
    return draw, reduced.reduce(draw)[2]


def test_closed_forms_hold_symbolically():
    assert all(closed_form_checks().values()), closed_form_checks()


@pytest.mark.parametrize("params,expected", [
    (LossParams(0.1, 0.1, 0.0), (0.0, 1.0)),   # the paper's: CIWL wins
    (LossParams(0.1, 0.0, 0.1), (1.0, 0.0)),   # mu1 = 0 < mu2: ICL wins
])
def test_stable_fixed_point_is_where_long_runs_end(draw_s, params, expected):
    draw, s = draw_s
    points = fixed_points(params, s, draw.dims)
    stable = [fp for fp in points if fp["stable"]]
    assert [(round(fp["m1"], 6), round(fp["m2"], 6)) for fp in stable] == [expected]
    origin = points[0]
    assert origin["m1"] == origin["m2"] == 0.0 and not origin["stable"]
    traj = simulate(draw, params, RunConfig(steps=1_000_000, every=100_000))  # slow approach: z drifts
    end = stable[0]
    assert traj.final("icl_strength") == pytest.approx(end["m1"], abs=1e-4)
    assert traj.final("ciwl_strength") == pytest.approx(end["m2"], abs=1e-4)
    assert traj.final("l1") == pytest.approx(end["l1"], rel=1e-3, abs=1e-8)
    assert traj.final("l2") == pytest.approx(end["l2"], rel=1e-3, abs=1e-8)


def test_symmetry_mode_is_not_mistaken_for_instability(draw_s):
    """At the CIWL point with b, c unbalanced the exact symmetry b -> σb, c -> c/σ gives a zero
    eigenvalue; it is identified (eigenvector along (p_b, -p_c)) and the point stays stable."""
    draw, s = draw_s
    params = LossParams(0.1, 0.1, 0.0)
    # the CIWL fixed point with u = p_b p_c = 1 split unevenly: p_b = 2, p_c = 1/2, p_d = 1
    info = classify(np.array([0.0, 2.0, 0.5, 1.0]), np.zeros(4), s, draw.dims, params)
    assert info["residual"] < 1e-12
    assert abs(info["symmetry_eigenvalue"]) < 1e-12
    assert info["stable"] and info["negative_directions"] == 0
    # the symmetry mode is the only one removed: the flat d-vs-(b, c) scale direction is still counted
    assert info["marginal_directions"] == 1


def test_fixed_points_cli(tmp_path, coop_inprocess):
    code, out, err = coop_inprocess("toy", "fixed-points", "--alpha", "0.1", "--mu1", "0.1", "--mu2", "0",
                                    "--out", tmp_path)
    assert code == 0, err
    data = json.loads((tmp_path / "fixed_points.json").read_text())
    points = data["fixed_points"]
    for fp in points:
        assert {"l1", "l2", "competition", "loss", "eigenvalues", "stable"} <= set(fp)
        assert len(fp["eigenvalues"]) == 8
    assert sum(fp["stable"] for fp in points) == 1
    code, _, err = coop_inprocess("toy", "fixed-points", "--mu2", "-1", "--out", tmp_path / "bad")
    assert code == 2 and "--mu2" in err


def test_portrait_cli(tmp_path, coop_inprocess):
    code, out, err = coop_inprocess("toy", "portrait", "--alpha", "0,0.1", "--seeds", "7,8", "--time", "8000",
                                    "--out", tmp_path)
    assert code == 0, err
    assert (tmp_path / "portrait.png").stat().st_size > 20_000
    for args, param in ((["--alpha", "x"], "--alpha"), (["--seeds", "a"], "--seeds"), (["--time", "0"], "--time"),
                        (["--clamp", "b:21"], "--clamp"), (["--clamp", "b:10,b:5"], "--clamp")):
        code, _, err = coop_inprocess("toy", "portrait", *args, "--out", tmp_path / "bad")
        assert code == 2 and param in err and not (tmp_path / "bad").exists()


def test_portrait_flows_follow_the_clamp(tmp_path, coop_inprocess):
    """With --clamp the drawn flows are the clamped model's: equal to `simulate --method flow --clamp`."""
    from toymodel.portrait import compute_portrait

    params, spec = LossParams(0.1, 0.1, 0.0), ("b:10", "c:10")
    por = compute_portrait(params, seeds=(7,), time=3990.0, grid=5, clamp=spec)
    traj = simulate(paper_draw(7), params, RunConfig(method="flow", steps=3990, every=10, clamp=spec))
    _, m1, m2 = por.trajectories[0]
    np.testing.assert_allclose(m1, traj.columns["icl_strength"], atol=1e-5)
    np.testing.assert_allclose(m2, traj.columns["ciwl_strength"], atol=1e-5)
    free = compute_portrait(params, seeds=(7,), time=3990.0, grid=5)
    assert np.max(np.abs(free.trajectories[0][1] - m1)) > 0.1
    code, _, err = coop_inprocess("toy", "portrait", "--seeds", "7", "--time", "2000", "--clamp", "b:10,c:10",
                                  "--out", tmp_path)
    assert code == 0, err
    assert (tmp_path / "portrait.png").stat().st_size > 20_000
