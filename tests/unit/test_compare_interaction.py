"""The ICL-on-CIWL interaction (`compare.maps.interaction_scale`: ICL's random-sign vote widens the CIWL
margin, one parameter kappa): hand values, kappa = 0 as the probit map exactly, recovery of toy-made
curves with the interaction and the CIWL population, and the refusal with the affine link."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr, ndtri

from compare.config import FitConfig
from compare.curves import Curves
from compare.fit import fit
from compare.maps import interaction_scale, link_map, population_map
from compare.toy import problem, simulate_batch
from runio.options import ConfigError
from toymodel.draws import PAPER_DIMS, PAPER_SEED

# a transient-ICL point (as tests/unit/test_compare_population.py's TRUTH) with a CIWL spread and kappa 1.5
TRUTH = {"alpha": 0.2, "mu1": 0.05, "mu2": 0.0, "tau": 150.0, "nd_ratio": 2.0, "sigma1": 0.0, "sigma2": 0.5,
         "kappa": 1.5, "B1": 0.12, "B2": 0.03}
SEQUENCES = np.arange(1, 51) * 30_000.0
STEPS = 20_000
SMALL = dict(starts=256, refine=8, max_steps=STEPS, link="probit", population="ciwl")


def interaction_curves(truth: dict) -> dict:
    """The toy's error-rate curves written out by hand (not with the fit's code): ICL, Phi(z1 u1) of
    the single state; CIWL, the mean over speeds v = exp(sigma2 x), x ~ N(0, 1), of Phi(z2 u2(v s /
    tau) / sqrt(1 + kappa^2 u1(s / tau)^2)) by a midpoint rule in probability with 4,001 nodes (the
    fit uses 101), the trajectories interpolated with numpy and held at their last step."""
    prob = problem(PAPER_SEED, tuple(PAPER_DIMS), 1.0)
    theta = np.array([[truth["alpha"], truth["mu1"], truth["mu2"], truth["nd_ratio"]]])
    l1, l2, _, _ = simulate_batch(theta, STEPS, 1)
    steps = np.arange(STEPS + 1)
    t = SEQUENCES / truth["tau"]
    u1 = 1.0 - np.sqrt(np.interp(t, steps, l1[0]) / prob.l1_ref)
    x = ndtri((np.arange(4001) + 0.5) / 4001)
    u2 = 1.0 - np.sqrt(np.interp(np.exp(truth["sigma2"] * x)[:, None] * t[None], steps, l2[0]) / prob.l2_ref)
    margin = ndtri(truth["B2"]) * u2 / np.sqrt(1.0 + truth["kappa"] ** 2 * u1 ** 2)
    return {"icl": ndtr(ndtri(truth["B1"]) * u1), "ciwl": np.mean(ndtr(margin), axis=0)}


def test_interaction_hand_values():
    l1 = np.array([1.0, 0.25, 0.0])  # l1_ref 1: u1 = 0, 0.5, 1
    np.testing.assert_allclose(interaction_scale(l1, 1.0, 2.0), [1.0, 1 / np.sqrt(2.0), 1 / np.sqrt(5.0)])
    # chance at u2 = 0 (L2 = L2_ref) whatever ICL's state; the floor B2 with CIWL complete and ICL absent
    assert link_map("probit", 1.0, 0.0, 0.03, 1.0, interaction_scale(0.0, 1.0, 4.0)) == 0.5
    assert link_map("probit", 0.0, 0.0, 0.03, 1.0, interaction_scale(1.0, 1.0, 4.0)) == pytest.approx(0.03)
    # ICL's vote raises the CIWL error when CIWL is complete: Phi(z2 / sqrt(1 + kappa^2)) > B2
    assert link_map("probit", 0.0, 0.0, 0.03, 1.0, interaction_scale(0.0, 1.0, 2.0)) == pytest.approx(
        ndtr(ndtri(0.03) / np.sqrt(5.0)))


def test_kappa_zero_is_the_probit_map_exactly():
    """The map: kappa = 0 gives the old map's numbers bit for bit; the fit: the interaction with kappa
    fixed at 0 gives the fit without it bit for bit (same screen, same refinement)."""
    rng = np.random.default_rng(3)
    l2, l1, w = rng.uniform(0, 2, (5, 40)), rng.uniform(0, 2, 40), np.full(5, 0.2)
    np.testing.assert_array_equal(population_map("probit", l2, w, 0.0, 0.07, 1.3, interaction_scale(l1, 1.1, 0.0)),
                                  population_map("probit", l2, w, 0.0, 0.07, 1.3))
    clean = interaction_curves(TRUTH)
    curves = Curves(SEQUENCES, clean["icl"], clean["ciwl"], np.ones(SEQUENCES.size, bool), "kappa0", chance=0.5)
    small = {**SMALL, "starts": 64, "refine": 2}
    old = fit(curves, FitConfig(fixed={"mu2": 0.0}, **small))
    new = fit(curves, FitConfig(fixed={"mu2": 0.0, "kappa": 0.0}, interaction="icl-on-ciwl", **small))
    assert new.params == old.params and new.se == old.se
    for k in ("icl", "ciwl"):
        np.testing.assert_array_equal(new.fitted[k], old.fitted[k])


def test_interaction_curves_are_recovered():
    """Noise-free toy-made curves with the interaction (kappa 1.5) and a CIWL spread (0.5), fitted with
    both: every parameter within 1% (the fit's 101-point quadrature against the truth's 4,001), R^2
    above 0.9999, kappa with a finite standard error; the fitted CIWL curve rebuilt from the
    trajectories (`FitResult.curve`) is the fit's own. Without the interaction the same curves fit
    worse (the map cannot raise the CIWL error while ICL is strong)."""
    clean = interaction_curves(TRUTH)
    curves = Curves(SEQUENCES, clean["icl"], clean["ciwl"], np.ones(SEQUENCES.size, bool), "interaction", chance=0.5)
    res = fit(curves, FitConfig(fixed={"mu2": 0.0}, interaction="icl-on-ciwl", **SMALL))
    for k in ("alpha", "mu1", "tau", "nd_ratio", "sigma2", "kappa", "B1", "B2"):
        assert res.params[k] == pytest.approx(TRUTH[k], rel=0.01), (k, res.params[k])
    assert min(res.r2.values()) > 0.9999 and 0 < res.se["kappa"] < np.inf
    np.testing.assert_allclose(res.curve("ciwl", SEQUENCES, res.trajectory["l2"], res.trajectory["l1"]),
                               res.fitted["ciwl"], rtol=1e-12)
    with pytest.raises(ValueError, match="needs the ICL trajectory"):
        res.curve("ciwl", SEQUENCES, res.trajectory["l2"])
    info = res.to_dict()
    assert info["config"]["interaction"] == "icl-on-ciwl" and "kappa" in info["mapping"]
    assert info["parameters"]["kappa"]["value"] == res.params["kappa"] and info["parameters"]["kappa"]["se"] > 0
    without = fit(curves, FitConfig(fixed={"mu2": 0.0}, **SMALL))
    assert without.params["kappa"] == 0.0 and "kappa" not in without.se
    assert without.r2["ciwl"] < res.r2["ciwl"] - 1e-4


def test_the_interaction_needs_the_probit_link(tmp_path, coop_inprocess):
    with pytest.raises(ConfigError) as exc:
        FitConfig(link="affine", interaction="icl-on-ciwl")
    assert exc.value.parameter == "interaction" and "probit" in exc.value.allowed
    with pytest.raises(ConfigError) as exc:
        FitConfig(fixed={"kappa": 1.0})
    assert exc.value.parameter == "fix"
    csv = tmp_path / "curves.csv"
    csv.write_text("sequences,icl_loss,ciwl_loss\n" + "".join(f"{1000 * i},{1 + 1 / i:.6f},{2 / i:.6f}\n"
                                                               for i in range(1, 21)))
    for extra in (["--link", "affine"], []):  # explicit; auto on loss curves resolves to affine
        code, out, err = coop_inprocess("compare", csv, "--out", tmp_path / "out", "--interaction", "icl-on-ciwl", *extra)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and "--interaction" in lines[0] and "probit" in lines[0], err
        assert "Traceback" not in err and not (tmp_path / "out").exists()
