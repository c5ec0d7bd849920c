"""The population maps (`compare.maps`: a curve as the mean of its map over a log-normal spread of
per-class speeds, one sigma_k per curve): hand values, recovery of toy-made population curves with
both links, standard errors that cover the truth, and sigma_k = 0 as the single-state map."""

from __future__ import annotations

import numpy as np
import pytest

from compare.config import FitConfig
from compare.curves import Curves
from compare.fit import fit
from compare.maps import link_map, population_map, population_times
from compare.toy import problem, simulate_batch
from toymodel.draws import PAPER_DIMS, PAPER_SEED
from toymodel.precision import float64

# a transient-ICL point (as tests/test_toy_fit.py's TRUTH) with error-rate floors and a CIWL spread
TRUTH = {"alpha": 0.2, "mu1": 0.05, "mu2": 0.0, "tau": 150.0, "nd_ratio": 2.0, "sigma1": 0.0, "sigma2": 0.5,
         "B1": 0.12, "B2": 0.03}
SEQUENCES = np.arange(1, 51) * 30_000.0
STEPS = 20_000
SMALL = dict(starts=256, refine=8, max_steps=STEPS)


def population_curves(truth: dict, link: str) -> dict:
    """The toy's error-rate curves averaged over speeds v = exp(sigma2 x), x ~ N(0, 1), by a midpoint
    rule in probability with 4,001 nodes (the fit uses 101: the truth is not the fit's own
    quadrature), the trajectory interpolated with numpy and held at its last step."""
    prob = problem(PAPER_SEED, tuple(PAPER_DIMS), 1.0)
    theta = np.array([[truth["alpha"], truth["mu1"], truth["mu2"], truth["nd_ratio"]]])
    l1, l2, _, _ = simulate_batch(theta, STEPS, 1)
    steps = np.arange(STEPS + 1)
    t = SEQUENCES / truth["tau"]
    from scipy.special import ndtri

    x = ndtri((np.arange(4001) + 0.5) / 4001)
    w = np.full(4001, 1 / 4001)
    out = {}
    for k, traj, ref, b, sigma in (("icl", l1[0], prob.l1_ref, truth["B1"], truth["sigma1"]),
                                   ("ciwl", l2[0], prob.l2_ref, truth["B2"], truth["sigma2"])):
        v = np.exp(sigma * x)[:, None] if sigma else np.ones((1, 1))
        ww = w if sigma else np.ones(1)
        losses = np.interp(v * t[None], steps, traj)
        out[k] = ww @ link_map(link, losses, (0.5 - b) / ref, b, ref)
    return out


def test_population_hand_values():
    times, w = population_times(np.array([1.0, 4.0]), 0.0)
    assert times.shape == (1, 2) and w.tolist() == [1.0]  # sigma 0: the single state
    times, w = population_times(np.array([1.0, 4.0]), 0.5)
    assert times.shape == (101, 2) and w.sum() == pytest.approx(1.0)
    assert (np.log(times[:, 0]) ** 2 / 0.25) @ w == pytest.approx(1.0, abs=0.03)  # E[x^2] = 1 for log v = 0.5 x
    assert np.median(times[:, 1]) == pytest.approx(4.0) and times[50, 1] == pytest.approx(4.0)  # median speed 1
    # the mean of an affine map is the map of the mean loss
    losses = np.array([[1.0, 2.0], [3.0, 6.0]])
    np.testing.assert_allclose(population_map("affine", losses, np.array([0.25, 0.75]), 2.0, 1.0), [6.0, 11.0])


@float64
def _cost(res, truth: dict) -> float:
    """The fit's objective at `truth` (its weighted squared residuals), for the fit's own curves."""
    from compare.objective import Objective
    from compare.screen import weights

    obj = Objective(res.curves, res.config, weights(res.curves, res.config.weights))
    theta = np.array([truth[k] for k in ("alpha", "mu1", "mu2", "tau", "nd_ratio", "sigma1", "sigma2")])
    ab = {k: ((0.5 - truth[f"B{i}"]) / obj.anchors[k][1], truth[f"B{i}"]) for i, k in enumerate(("icl", "ciwl"), 1)}
    f = obj.mapped(obj.model_points(theta), ab)
    return float(sum(np.sum((obj.w[k] * (f[k] - obj.ys[k])) ** 2) for k in ("icl", "ciwl")))


def test_the_default_map():
    """The map chosen by held-out error (docs/compare.md): probit with a CIWL population on error-rate
    curves; a loss has no chance level, so the link falls back to affine there."""
    cfg = FitConfig()
    assert (cfg.link, cfg.population) == ("auto", "ciwl")
    assert cfg.for_curves(True).link == "probit" and cfg.for_curves(False).link == "affine"
    assert FitConfig(link="affine").for_curves(True).link == "affine"


@pytest.mark.parametrize("link", ["affine", "probit"])
def test_population_curves_are_recovered(link):
    """Noise-free toy-made population curves (CIWL spread 0.5) are recovered with the population on
    for CIWL: every parameter within 1% (the fit's 101-point quadrature against the truth's 4,001),
    R^2 above 0.9999. With noise of sd 0.01 the fit's cost is at most the truth's (the search finds
    the optimum); with the affine link every estimate lies within 4 standard errors of the truth.
    With the probit link it does not on this draw: alpha, mu1, tau and nd_ratio move together to a
    point of lower cost (alpha 0.096 for 0.2 at 10 standard errors), the limitation of the probit
    link's linearised errors (`test_population_standard_errors_cover_the_truth` measures it)."""
    clean = population_curves(TRUTH, link)
    used = np.ones(SEQUENCES.size, bool)
    config = FitConfig(fixed={"mu2": 0.0}, link=link, population="ciwl", **SMALL)
    res = fit(Curves(SEQUENCES, clean["icl"], clean["ciwl"], used, "population", chance=0.5), config)
    for k in ("alpha", "mu1", "tau", "nd_ratio", "sigma2", "B1", "B2"):
        assert res.params[k] == pytest.approx(TRUTH[k], rel=0.01), (k, res.params[k])
    assert res.params["sigma1"] == 0.0 and "sigma1" not in res.se and "sigma2" in res.se
    assert min(res.r2.values()) > 0.9999
    # the fitted curve is the population over the trajectory to the fit's horizon, not the data's span
    np.testing.assert_allclose(res.curve("ciwl", SEQUENCES, res.trajectory["l2"]), res.fitted["ciwl"], rtol=1e-12)
    rng = np.random.default_rng(5)
    noisy = {k: v + rng.normal(0.0, 0.01, v.size) for k, v in clean.items()}
    res = fit(Curves(SEQUENCES, noisy["icl"], noisy["ciwl"], used, "noisy", chance=0.5), config)
    assert res.sigma2 * res.dof <= _cost(res, TRUTH) * (1 + 1e-9)
    if link == "affine":
        for k in ("alpha", "mu1", "tau", "nd_ratio", "sigma2", "B1", "B2"):
            assert 0 < res.se[k] < np.inf and abs(res.params[k] - TRUTH[k]) <= 4 * res.se[k], (k, res.params[k], res.se[k])


def test_the_prediction_continues_the_fitted_population_curve():
    """Fitted up to half the rows, the prediction at the fitted rows is the fit's own values (the toy is
    simulated past the data's span for the population's fast classes, as in the fit), and the held-out
    rows of toy-made curves are predicted to within 1% of their range."""
    from compare.predict import predict

    clean = population_curves(TRUTH, "affine")
    until = float(SEQUENCES[24])
    curves = Curves(SEQUENCES, clean["icl"], clean["ciwl"], SEQUENCES <= until, "half", until=until, chance=0.5)
    res = fit(curves, FitConfig(fixed={"mu2": 0.0}, link="affine", population="ciwl", **SMALL))
    pred = predict(res, curves)
    for k in ("icl", "ciwl"):
        np.testing.assert_allclose(pred.predicted[k][curves.used], res.fitted[k], rtol=1e-10)
        assert pred.mae_held_out[k] < 0.01 * np.ptp(clean[k]), (k, pred.mae_held_out[k])


def test_a_single_state_truth_gives_no_spread():
    """Curves without a spread, fitted with the population on: sigma2 comes out at (or within 1e-3 of)
    0 and the other parameters as without it."""
    truth = {**TRUTH, "sigma2": 0.0}
    clean = population_curves(truth, "affine")
    used = np.ones(SEQUENCES.size, bool)
    res = fit(Curves(SEQUENCES, clean["icl"], clean["ciwl"], used, "single", chance=0.5),
              FitConfig(fixed={"mu2": 0.0}, link="affine", population="ciwl", **SMALL))
    assert res.params["sigma2"] < 1e-3
    for k in ("alpha", "mu1", "tau", "nd_ratio", "B1", "B2"):
        assert res.params[k] == pytest.approx(truth[k], rel=1e-3), k


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="measured: the population maps' standard errors are too small (within one "
                                       "standard error 0.22 affine, 0.50 probit; within two 0.54, 0.75); "
                                       "docs/compare.md")
@pytest.mark.parametrize("link", ["affine", "probit"])
def test_population_standard_errors_cover_the_truth(link):
    """Coverage of the population maps' standard errors: 20 draws of noise of sd 0.01 on the
    toy-made curves above, each fitted (mu2 fixed at its true 0); the truth should lie within one
    standard error in [0.55, 0.82] and within two in [0.80, 0.995] of the (draw, parameter) pairs,
    the bands of the probit test in tests/test_toy_fit.py. It does not (strict xfail: a fix makes
    this test report): measured 0.22 / 0.54 (affine) and 0.50 / 0.75 (probit). With the affine
    link, on 3 of the 20 draws the search ends above the truth's cost (a local minimum); on most
    others the fit's cost is below the truth's and alpha, mu1, tau, nd_ratio sit 5-18 standard
    errors from it: the linearised errors miss the directions in which they move together."""
    clean = population_curves(TRUTH, link)
    rng = np.random.default_rng(11)
    names = ("alpha", "mu1", "tau", "nd_ratio", "sigma2", "B1", "B2")
    z = []
    for _ in range(20):
        noisy = {k: v + rng.normal(0.0, 0.01, v.size) for k, v in clean.items()}
        curves = Curves(SEQUENCES, noisy["icl"], noisy["ciwl"], np.ones(SEQUENCES.size, bool), "noisy", chance=0.5)
        res = fit(curves, FitConfig(fixed={"mu2": 0.0}, link=link, population="ciwl", max_steps=STEPS))
        z.append([(res.params[k] - TRUTH[k]) / res.se[k] for k in names])
    z = np.abs(np.array(z))
    print(f"{link}: within one standard error {np.mean(z < 1):.2f}, within two {np.mean(z < 2):.2f}")
    assert 0.55 <= np.mean(z < 1) <= 0.82, np.mean(z < 1)
    assert 0.80 <= np.mean(z < 2) <= 0.995, np.mean(z < 2)
