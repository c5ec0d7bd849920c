"""`compare` (the fit, its maps and the toy with a speed ratio) and `coop compare`: recovery of known parameters from toy-generated curves, R^2 and
the affine maps on hand-computable cases, the speed ratio's meaning, and bad input through the CLI."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from conftest import run_coop
from compare.config import FitConfig
from compare.curves import Curves, load_curves
from compare.fit import fit
from compare.maps import affine_map, link_map, r_squared
from compare.toy import problem, simulate_batch
from toymodel import reduced
from toymodel.draws import PAPER_DIMS, PAPER_SEED, paper_draw
from toymodel.dynamics import REDUCED, gd_scan
from toymodel.loss import LossParams

# a transient-ICL point away from the paper's (nd_ratio 2: mechanism 2 four times faster than there)
TRUTH = {"alpha": 0.2, "mu1": 0.05, "mu2": 0.0, "tau": 150.0, "nd_ratio": 2.0, "A1": 6.0, "B1": 0.3, "A2": 3.0, "B2": 0.02}
SEQUENCES = np.arange(1, 51) * 30_000.0  # 50 rows up to 1.5M sequences = toy step 10,000
SMALL = dict(starts=64, refine=4, max_steps=20_000, population="none")  # tau >= 75; the single-state maps


def probit_truth():
    """(truth, clean curves, the toy problem, its L1 per step): TRUTH's toy at the paper's draw, through
    the probit link (floors 0.12, 0.03)."""
    prob = problem(PAPER_SEED, tuple(PAPER_DIMS), 1.0)
    truth = {**TRUTH, "B1": 0.12, "B2": 0.03}
    theta = np.array([[truth["alpha"], truth["mu1"], truth["mu2"], truth["nd_ratio"]]])
    l1, l2, _, _ = simulate_batch(theta, 20_000, 1)
    t, steps = SEQUENCES / truth["tau"], np.arange(20_001)
    clean = {"icl": link_map("probit", np.interp(t, steps, l1[0]), 0.0, truth["B1"], prob.l1_ref),
             "ciwl": link_map("probit", np.interp(t, steps, l2[0]), 0.0, truth["B2"], prob.l2_ref)}
    return truth, clean, prob, l1[0]


def toy_curves(truth: dict, sequences: np.ndarray, max_steps: int = 20_000) -> dict:
    """The mapped toy curves at `sequences`, interpolated with numpy (independently of fit.py's code)."""
    theta = np.array([[truth["alpha"], truth["mu1"], truth["mu2"], truth["nd_ratio"]]])
    l1, l2, _, _ = simulate_batch(theta, max_steps, 1)
    t = sequences / truth["tau"]
    steps = np.arange(max_steps + 1)
    return {"icl": truth["A1"] * np.interp(t, steps, l1[0]) + truth["B1"],
            "ciwl": truth["A2"] * np.interp(t, steps, l2[0]) + truth["B2"]}


def write_curves(path, sequences, icl, ciwl, header=("sequences", "icl_loss", "ciwl_loss")):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for row in zip(sequences, icl, ciwl):
            w.writerow([repr(float(x)) for x in row])
    return path


@pytest.fixture(scope="module")
def truth_csv(tmp_path_factory):
    c = toy_curves(TRUTH, SEQUENCES)
    return write_curves(tmp_path_factory.mktemp("fit") / "toy.csv", SEQUENCES, c["icl"], c["ciwl"])


# ---------------------------------------------------------------------------------------------
# R^2, affine maps
# ---------------------------------------------------------------------------------------------


def test_r_squared_hand_computed():
    # mean 2.5, SS_tot = 2.25 + 0.25 + 0.25 + 2.25 = 5; SS_res = 1 (last point off by 1): R^2 = 0.8
    assert r_squared([1, 2, 3, 4], [1, 2, 3, 5]) == pytest.approx(0.8, abs=1e-15)
    assert r_squared([1, 2, 3, 4], [2.5] * 4) == 0.0
    assert r_squared([1, 2, 3, 4], [1, 2, 3, 4]) == 1.0


def test_affine_map_closed_form():
    model = np.array([0.0, 1.0, 2.0, 3.0])
    assert affine_map(model, 2 * model + 1) == pytest.approx((2.0, 1.0), abs=1e-14)
    # y = 1, 3, 2, 4 on x = 0..3: slope = cov/var = 2.5 / 5 = 0.5 (SS_xy 2.5, SS_xx 5), B = 2.5 - 0.5 * 1.5
    assert affine_map(model, [1, 3, 2, 4]) == pytest.approx((0.8, 1.3), abs=1e-14)
    # a falling relation would need A < 0: A = 0, B = mean
    assert affine_map(model, -model) == (0.0, -1.5)
    assert affine_map(model, 2 * model + 1, b_fixed=0.0) == pytest.approx(((2 * 14 + 6) / 14, 0.0))
    assert affine_map(model, 2 * model + 1, a_fixed=1.0) == pytest.approx((1.0, 2.5))


def test_fit_config_defaults_are_the_papers_draw():
    """compare.config writes the paper's draw as numbers (importing toymodel.draws would load jax)."""
    from toymodel.draws import PAPER_DIMS, PAPER_SEED

    assert FitConfig().seed == PAPER_SEED and FitConfig().dims == PAPER_DIMS


# ---------------------------------------------------------------------------------------------
# the simulation and the speed ratio
# ---------------------------------------------------------------------------------------------


def test_at_the_draws_own_dims_it_is_the_papers_run():
    l1, l2, lmin, tmin = simulate_batch(np.array([[0.1, 0.1, 0.0, 8.0]]), 16_000, 1)
    assert int(tmin[0]) == 5658 and lmin[0] == pytest.approx(0.00262807, rel=1e-5)
    assert l1[0, -1] == pytest.approx(0.225703, rel=1e-5) and l2[0, -1] < 1e-20


def test_nd_ratio_is_gradient_descent_at_an_effective_n_d(x64):
    """d stepping rho times faster == plain GD with s_d / rho, k2 and kc x rho, q_d / sqrt(rho)."""
    draw = paper_draw()
    p0, q0, s, _ = reduced.reduce(draw)
    rho, steps = 4.0, 3000  # nd_ratio = 160 / (20 rho) = 2
    base = reduced.constants(s, draw.dims, LossParams(0.2, 0.05, 0.01))
    coeffs = np.asarray(base.coeffs).copy()
    coeffs[1] *= rho  # k2
    coeffs[2] *= rho  # kc
    s2 = np.array(s, float)
    s2[3] /= rho
    q2 = np.array(q0, float)
    q2[3] /= np.sqrt(rho)
    const = reduced.Constants(np.asarray(s2), np.asarray(coeffs))
    ones = np.ones(4)
    records, _, _ = gd_scan(REDUCED, (np.asarray(p0), q2), consts=const, lr=1.0, mask=(ones, ones),
                            l1_threshold=0.0, steps=steps)
    l1, l2, _, _ = simulate_batch(np.array([[0.2, 0.05, 0.01, 2.0]]), steps, 1)
    np.testing.assert_allclose(l1[0], np.asarray(records)[:, 1], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(l2[0], np.asarray(records)[:, 2], rtol=1e-9, atol=1e-15)
    assert np.ptp(l2[0]) > 0.1  # mechanism 2 was learned in the window (the check is not vacuous)


# ---------------------------------------------------------------------------------------------
# recovery
# ---------------------------------------------------------------------------------------------


def test_noise_free_curves_recover_the_parameters(truth_csv):
    """Curves made by the toy itself are a zero-residual point of the fit: with mu2 fixed at its
    true 0, the optimum must be the truth. The tolerance (1e-3 relative) covers the solver's
    stopping rule and its finite-difference Jacobian (both orders of magnitude smaller)."""
    curves = load_curves(truth_csv)
    res = fit(curves, FitConfig(fixed={"mu2": 0.0}, **SMALL))
    for k in ("alpha", "mu1", "tau", "nd_ratio", "A1", "B1", "A2", "B2"):
        assert res.params[k] == pytest.approx(TRUTH[k], rel=1e-3), k
    assert res.params["mu2"] == 0.0 and "mu2" not in res.se
    assert res.r2["icl"] > 1 - 1e-8 and res.r2["ciwl"] > 1 - 1e-8
    assert res.toy["outcome"] == "transient_icl" and abs(res.toy["steps"] - 10_000) <= 1  # ceil(1.5M / tau)


def test_noisy_curves_recover_within_standard_errors(truth_csv):
    """With noise of sd 0.03 on both curves and every parameter free, the estimates fall within
    4 of their standard errors of the truth (a loose check that the errors are of the right size:
    for correct errors |z| > 4 has probability 6e-5 per parameter); R^2 is near its noise ceiling."""
    rng = np.random.default_rng(0)
    clean = load_curves(truth_csv)
    icl = clean.icl + rng.normal(0, 0.03, clean.icl.size)
    ciwl = clean.ciwl + rng.normal(0, 0.03, clean.ciwl.size)
    curves = Curves(clean.sequences, icl, ciwl, clean.used, "noisy")
    res = fit(curves, FitConfig(**SMALL))
    for k in ("alpha", "mu1", "tau", "nd_ratio", "A1", "B1", "A2", "B2"):
        assert 0 < res.se[k] < np.inf, k
        assert abs(res.params[k] - TRUTH[k]) <= 4 * res.se[k], (k, res.params[k], res.se[k])
    for k in ("icl", "ciwl"):  # R^2 of the truth on the noisy data is the ceiling; the fit can only beat it
        truth_r2 = r_squared(curves.y(k), getattr(clean, k)[clean.used])
        assert res.r2[k] >= truth_r2 - 1e-9
    assert res.toy["outcome"] == "transient_icl"


def test_error_rate_maps_are_anchored_at_chance():
    """Error-rate curves (a chance level on the curves) fit one floor B per curve: the toy's
    reference loss maps to chance 0.5, so A = (0.5 - B) / L_ref follows from B. Toy-made anchored
    curves are recovered exactly; A1, A2 are not parameters of their own (no standard error), and
    fixing one is refused."""
    prob = problem(PAPER_SEED, tuple(PAPER_DIMS), 1.0)
    truth = {**TRUTH, "B1": 0.12, "B2": 0.03}
    truth["A1"], truth["A2"] = (0.5 - truth["B1"]) / prob.l1_ref, (0.5 - truth["B2"]) / prob.l2_ref
    c = toy_curves(truth, SEQUENCES)
    curves = Curves(SEQUENCES, c["icl"], c["ciwl"], np.ones(SEQUENCES.size, bool), "anchored", chance=0.5)
    res = fit(curves, FitConfig(fixed={"mu2": 0.0}, link="affine", **{**SMALL, "starts": 256}))
    for k in ("alpha", "mu1", "tau", "nd_ratio", "B1", "B2", "A1", "A2"):
        assert res.params[k] == pytest.approx(truth[k], rel=1e-3), k
    assert "A1" not in res.se and "A2" not in res.se and "B1" in res.se
    assert res.r2["icl"] > 1 - 1e-8 and res.r2["ciwl"] > 1 - 1e-8
    with pytest.raises(ValueError, match="anchored"):
        fit(curves, FitConfig(fixed={"A1": 1.0}, **SMALL))


def test_probit_link_hand_values():
    """The probit link maps the reference loss to chance, 0 to the floor B, and falls as 1 - sqrt(L / L_ref)
    grows: Phi(Phi^-1(B) u). At L = L_ref / 4, u = 1/2; with B = Phi(-2), Phi(-1) = 0.158655..."""
    from scipy.special import ndtr

    b = float(ndtr(-2.0))
    got = link_map("probit", np.array([2.0, 0.0, 0.5]), 0.0, b, l_ref=2.0)
    np.testing.assert_allclose(got, [0.5, b, 0.15865525393145707], rtol=1e-12)
    np.testing.assert_allclose(link_map("affine", np.array([0.0, 2.0]), 3.0, 0.25), [0.25, 6.25])


def test_probit_link_recovers_toy_made_curves():
    """Error rates made through the probit link from the toy itself are recovered (every toy
    parameter and both floors, 1e-3 relative, R^2 1), although the screening ranks its starts with
    the affine link; with noise of sd 0.01 they fall within 4 standard errors of the truth. A CSV's
    curves (no chance level) are refused."""
    truth, clean, prob, l1 = probit_truth()
    used = np.ones(SEQUENCES.size, bool)
    config = FitConfig(fixed={"mu2": 0.0}, link="probit", **{**SMALL, "starts": 256, "refine": 8})
    res = fit(Curves(SEQUENCES, clean["icl"], clean["ciwl"], used, "probit", chance=0.5), config)
    for k in ("alpha", "mu1", "tau", "nd_ratio", "B1", "B2"):
        assert res.params[k] == pytest.approx(truth[k], rel=1e-3), k
    assert res.r2["icl"] > 1 - 1e-8 and res.r2["ciwl"] > 1 - 1e-8
    np.testing.assert_allclose(res.curve("icl", np.arange(3) * res.params["tau"], l1), link_map("probit", l1[:3], 0.0, res.params["B1"], prob.l1_ref))
    rng = np.random.default_rng(3)
    noisy = {k: v + rng.normal(0.0, 0.01, v.size) for k, v in clean.items()}
    res = fit(Curves(SEQUENCES, noisy["icl"], noisy["ciwl"], used, "noisy", chance=0.5), config)
    for k in ("alpha", "mu1", "tau", "nd_ratio", "B1", "B2"):
        assert 0 < res.se[k] < np.inf and abs(res.params[k] - truth[k]) <= 4 * res.se[k], (k, res.params[k], res.se[k])
    with pytest.raises(ValueError, match="probit"):
        fit(Curves(SEQUENCES, clean["icl"], clean["ciwl"], used, "csv"), config)


def evaluation_like_noise(rng, clean: dict, sd: float = 0.03) -> dict:
    """Noise like an evaluator's: a mean over a fixed number of sequences, so its SD grows with the
    loss (as the square root here) and differs between the two curves; `sd` at each curve's mean."""
    return {k: clean[k] + rng.normal(0.0, 1.0, clean[k].size) * sd * np.sqrt(clean[k] / clean[k].mean())
            for k in ("icl", "ciwl")}


@pytest.mark.slow
def test_standard_errors_cover_the_truth_at_their_nominal_rate():
    """Coverage: over 20 draws of evaluation-like noise (heteroscedastic, see `evaluation_like_noise`),
    each fitted with the default search (mu2 fixed at its true 0), the truth lies within one reported
    standard error in about 68% and within two in about 95% of the (draw, parameter) pairs. The
    tolerance allows for 160 correlated pairs: [0.55, 0.82] and [0.88, 0.995]. (sigma^2 (J^T J)^-1,
    the estimator before HC3, gave 0.87 within one: its errors were too large for most parameters
    and too small for A2.)"""
    clean = toy_curves(TRUTH, SEQUENCES)
    rng = np.random.default_rng(1)
    z = []
    for _ in range(20):
        noisy = evaluation_like_noise(rng, clean)
        curves = Curves(SEQUENCES, noisy["icl"], noisy["ciwl"], np.ones(SEQUENCES.size, bool), "noisy")
        res = fit(curves, FitConfig(fixed={"mu2": 0.0}, population="none", max_steps=20_000))
        z.append([(res.params[k] - TRUTH[k]) / res.se[k] for k in res.se])
    z = np.abs(np.array(z))
    assert z.shape == (20, 8)
    assert 0.55 <= np.mean(z < 1) <= 0.82, np.mean(z < 1)
    assert 0.88 <= np.mean(z < 2) <= 0.995, np.mean(z < 2)


@pytest.mark.slow
def test_probit_standard_errors_cover_the_truth():
    """The coverage check for the probit link on error-rate curves (anchored at chance): 20 draws
    of evaluation-like noise (sd 0.01 at the curves' means) on toy-made probit curves, the default
    search but for the step budget (mu2 fixed at its true 0), 6 free parameters (alpha, mu1, tau,
    nd_ratio, B1, B2). Measured: within one standard error 0.64 of the pairs (nominal 0.68), within
    two 0.86 (nominal 0.95): short in the tails. Every fit's cost is below the truth's (the search
    finds the optimum), but on 4 of the 20 draws alpha, mu1, tau and nd_ratio, which move together,
    are 3-6 standard errors off: the linearised errors are too small there. The test holds the one-
    standard-error band of the affine test and keeps the two-standard-error shortfall from growing
    (>= 0.80), the limitation documented in compare.fit."""
    truth, clean, prob, l1 = probit_truth()
    rng = np.random.default_rng(2)
    z = []
    for _ in range(20):
        noisy = evaluation_like_noise(rng, clean, sd=0.01)
        curves = Curves(SEQUENCES, noisy["icl"], noisy["ciwl"], np.ones(SEQUENCES.size, bool), "noisy", chance=0.5)
        res = fit(curves, FitConfig(fixed={"mu2": 0.0}, link="probit", population="none", max_steps=20_000))
        z.append([(res.params[k] - truth[k]) / res.se[k] for k in ("alpha", "mu1", "tau", "nd_ratio", "B1", "B2")])
    z = np.abs(np.array(z))
    assert 0.55 <= np.mean(z < 1) <= 0.82, np.mean(z < 1)
    assert 0.80 <= np.mean(z < 2) <= 0.995, np.mean(z < 2)


# ---------------------------------------------------------------------------------------------
# reading curves, and the CLI
# ---------------------------------------------------------------------------------------------


def test_step_zero_row_dropped_by_default(tmp_path, truth_csv):
    seq = np.concatenate([[0.0], SEQUENCES])
    c = toy_curves(TRUTH, SEQUENCES)
    path = write_curves(tmp_path / "with0.csv", seq, np.r_[25.0, c["icl"]], np.r_[25.0, c["ciwl"]])
    curves = load_curves(path)
    assert curves.used.tolist() == [False] + [True] * 50 and curves.s[0] == 30_000
    assert load_curves(path, from_sequences=0).used.all()
    assert load_curves(path, from_sequences=600_000).s[0] == 600_000


@pytest.fixture(scope="module")
def bad_sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    seq = np.arange(1, 21) * 1000.0
    y = np.linspace(1, 2, 20)
    write_curves(root / "missing.csv", seq, y, y, header=("sequences", "icl_loss", "ciwl_acc"))
    write_curves(root / "short.csv", seq[:5], y[:5], y[:5])
    write_curves(root / "nan.csv", seq, np.r_[y[:-1], np.nan], y)
    write_curves(root / "inf.csv", seq, y, np.r_[np.inf, y[1:]])
    write_curves(root / "unsorted.csv", seq[::-1], y, y)
    write_curves(root / "constant.csv", seq, np.ones(20), y)
    (root / "text.csv").write_text("sequences,icl_loss,ciwl_loss\n1,a,2\n")
    (root / "empty.csv").write_text("")
    (root / "header_only.csv").write_text("sequences,icl_loss,ciwl_loss\n")
    (root / "run_without_metrics").mkdir()
    write_curves(root / "good.csv", seq, y, y[::-1] ** 2)
    return root


BAD = [
    (["{root}/missing.csv"], "--ciwl", "lacks column"),
    (["{root}/short.csv"], "RUN_DIR|CURVES.csv", "at least 8"),
    (["{root}/nan.csv"], "--icl", "not finite"),
    (["{root}/inf.csv"], "--ciwl", "not finite"),
    (["{root}/unsorted.csv"], "--sequences", "increasing"),
    (["{root}/constant.csv"], "--icl", "constant"),
    (["{root}/text.csv"], "--icl", "not a number"),
    (["{root}/empty.csv"], "--sequences", "lacks column"),
    (["{root}/run_without_metrics"], "RUN_DIR|CURVES.csv", "without metrics.csv"),
    (["{root}/no_such_dir"], "RUN_DIR|CURVES.csv", "no such file"),
    (["{root}/good.csv", "--from-sequences", "15000"], "RUN_DIR|CURVES.csv", "at least 8"),
    (["{root}/good.csv", "--from-sequences", "-1"], "--from-sequences", ">= 0"),
    (["{root}/good.csv", "--fix", "beta=1"], "--fix", "NAME=VALUE"),
    (["{root}/good.csv", "--fix", "mu2"], "--fix", "NAME=VALUE"),
    (["{root}/good.csv", "--fix", "mu2=nan"], "--fix", "NAME=VALUE"),
    (["{root}/good.csv", "--fix", "mu2=-1"], "--fix", ">= 0"),
    (["{root}/good.csv", "--fix", "mu2=0,mu2=1"], "--fix", "twice"),
    (["{root}/good.csv", "--fix", "tau=1000"], "--fix", "tau must lie"),
    (["{root}/good.csv", "--starts", "0"], "--starts", ">= 1"),
    (["{root}/good.csv", "--refine", "0"], "--refine", ">= 1"),
    (["{root}/good.csv", "--weights", "log"], "--weights", "balanced"),
    (["{root}/good.csv", "--link", "logit"], "--link", "auto, affine, probit"),
    (["{root}/good.csv", "--link", "probit"], "--link", "error rates"),
    (["{root}/good.csv", "--max-steps", "999"], "--max-steps", ">= 1000"),
    (["{root}/good.csv", "--grid", "1"], "--grid", "2 to 200"),
    (["{root}/good.csv", "--seed", "-1"], "--seed", ">= 0"),
    (["{root}/good.csv", "--fit-until", "1e9"], "--fit-until", "inside the run"),
    (["{root}/good.csv", "--fit-until", "500"], "--fit-until", "inside the run"),
    (["{root}/good.csv", "--fit-until", "5000"], "RUN_DIR|CURVES.csv", "at least 8"),
    (["{root}/good.csv", "--losses", "log"], "--losses", "context"),
    (["{root}/header_only.csv"], "RUN_DIR|CURVES.csv", "no rows"),
]


@pytest.mark.parametrize("args,param,why", BAD, ids=[" ".join(a).replace("{root}/", "") for a, _, _ in BAD])
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, bad_sources, coop_inprocess, args, param, why):
    out = tmp_path / "out"
    code, _, err = coop_inprocess("compare", *[a.format(root=bad_sources) for a in args], "--out", out)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and param in lines[0] and why in lines[0], err
    assert not out.exists()


def test_bad_csv_as_a_process_has_no_traceback(tmp_path, bad_sources):
    proc = run_coop("compare", bad_sources / "missing.csv", "--out", tmp_path / "out")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "lacks column" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_compare_writes_fit_overlay_phase(tmp_path, truth_csv, coop_inprocess):
    out = tmp_path / "cmp"
    code, stdout, err = coop_inprocess("compare", truth_csv, "--out", out, "--fix", "mu2=0", "--starts", "64",
                                       "--refine", "4", "--max-steps", "20000", "--grid", "6")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["fit.json", "overlay.png", "phase.png"]
    info = json.loads((out / "fit.json").read_text())
    assert info["r2"]["icl"] > 0.999999 and info["r2"]["ciwl"] > 0.999999
    assert info["parameters"]["mu2"] == {**info["parameters"]["mu2"], "value": 0.0, "se": None, "fixed": True}
    assert info["parameters"]["alpha"]["value"] == pytest.approx(TRUTH["alpha"], rel=1e-3)
    assert info["toy"]["outcome"] == "transient_icl" and info["toy"]["transient_icl"] is True
    assert len(info["residuals"]["icl_residual"]) == 50 and "mapping" in info
    assert np.asarray(info["phase_diagram"]["outcome"]).shape == (6, 6)
    assert "R² ICL" in stdout and "transient_icl" in stdout


# ---------------------------------------------------------------------------------------------
# held-out prediction (--fit-until), and the in-context losses of a run
# ---------------------------------------------------------------------------------------------


def test_fade_threshold_and_measured_fade():
    from compare.predict import fade_threshold, measured_fade

    # accuracy falls linearly with the loss, 0.9 at loss 0.1 to 0.5 at loss 0.9: 0.6 at loss 0.7
    loss = np.array([0.9, 0.1, 0.5, 0.3, 0.7])
    assert fade_threshold(loss, 0.9 - 0.5 * (loss - 0.1)) == pytest.approx(0.7)
    assert fade_threshold(loss, np.full(5, 0.9)) is None  # never below 0.6: no threshold
    seq = np.arange(6) * 10.0
    assert measured_fade(seq, np.array([0.5, 0.7, 0.95, 0.8, 0.55, 0.5])) == 40.0
    assert measured_fade(seq, np.array([0.5, 0.7, 0.95, 0.9, 0.9, 0.9])) is None
    assert measured_fade(seq, np.array([0.5, 0.55, 0.9, 0.6, 0.61, 0.7])) is None  # 0.6 is not below 0.6


def test_fit_until_predicts_held_out_toy_made_curves(tmp_path, coop_inprocess):
    """Toy-made curves (with an ICL accuracy falling linearly in the ICL loss) fitted up to just after
    the ICL peak: the fit recovers the truth, so the prediction of the held-out rows is the truth
    (R^2 ~ 1) and the predicted fade falls within one row spacing before the measured one."""
    c = toy_curves(TRUTH, SEQUENCES)
    lo, hi = c["icl"].min(), c["icl"].max()
    acc = 0.98 - 0.48 * (c["icl"] - lo) / (hi - lo)
    path = write_curves(tmp_path / "toy.csv", SEQUENCES, c["icl"], c["ciwl"])
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([rows[0] + ["icl_acc"]] + [r + [repr(float(a))] for r, a in zip(rows[1:], acc)])
    until = float(SEQUENCES[int(np.argmin(c["icl"])) + 3])
    out = tmp_path / "cmp"
    code, stdout, err = coop_inprocess("compare", path, "--out", out, "--fix", "mu2=0", "--starts", "64", "--refine", "4",
                                       "--max-steps", "20000", "--grid", "4", "--fit-until", str(until))
    assert code == 0, err
    info = json.loads((out / "fit.json").read_text())
    pred = info["prediction"]
    assert info["data"]["rows_fitted"] == int((SEQUENCES <= until).sum()) and pred["rows_held_out"] == int((SEQUENCES > until).sum())
    assert pred["r2_held_out"]["icl"] > 0.999 and pred["r2_held_out"]["ciwl"] > 0.999
    assert all(0 <= pred["mae_held_out"][k] < 0.01 * np.ptp(c[k]) for k in ("icl", "ciwl"))
    measured = pred["measured_fade_sequences"]
    assert measured is not None and measured - 30_000 <= pred["predicted_fade_sequences"] <= measured
    assert "held out after" in stdout and "predicted R²" in stdout


def test_observed_outcome_rule():
    from compare.atlas import observed_outcome

    def rows(icl, ciwl_end=0.95):
        return [{"icl_acc": a, "ciwl_acc": ciwl_end} for a in icl]

    assert observed_outcome(rows([0.5, 0.9, 0.55])) == "transient_icl"
    assert observed_outcome(rows([0.5, 0.9, 0.8])) == "persistent_icl"
    assert observed_outcome(rows([0.5, 0.6, 0.5])) == "ciwl_only"
    assert observed_outcome(rows([0.5, 0.6, 0.5], ciwl_end=0.6)) == "no_learning"
    assert observed_outcome(rows([0.5, 0.6, 0.9])) == "persistent_icl"  # peak at the end: not faded


def test_atlas_directions_rank_the_knob_against_the_fit_and_the_outcomes():
    from types import SimpleNamespace

    from compare.atlas import AtlasRow, directions

    def row(noise, alpha, mu1, observed, toy, problem=""):
        result = SimpleNamespace(params={"alpha": alpha, "mu1": mu1, "mu2": 1e-3}, toy={"outcome": "no_learning"},
                                 verdict={"toy": toy})  # the atlas reads the verdict in the curves' terms
        return AtlasRow(f"n{noise}", {"noise": noise, "name": f"n{noise}", "seed": int(10 * noise)}, observed, result, problem)

    rows = [row(0.3, 0.01, 1e-3, "persistent_icl", "persistent_icl"),
            row(0.5, 0.02, 1e-2, "transient_icl", "persistent_icl"),
            row(0.7, 0.04, 1e-1, "transient_icl", "transient_icl"),
            row(0.9, 0.03, 1.0, "ciwl_only", "ciwl_only"),
            row(1.1, 9.0, 9.0, "ciwl_only", "persistent_icl", problem="R² icl 0.5 < 0.8")]  # not fitted: left out
    d = directions(rows)
    assert list(d) == ["noise"]  # a knob that is not a number has no direction, nor has the seed
    assert d["noise"]["runs"] == 4
    assert d["noise"]["log_mu1"] == pytest.approx(1.0) and d["noise"]["log_alpha"] == pytest.approx(0.8)
    assert d["noise"]["observed"] == pytest.approx(np.corrcoef([0, 1, 2, 3], [0, 1.5, 1.5, 3])[0, 1])
    assert math.isnan(d["noise"]["log_mu2"])  # constant
    assert directions(rows[:2]) == {}  # fewer than 3 fitted runs: no direction


def test_atlas_labels_name_the_differing_knobs_and_do_not_overlap():
    from compare.atlas import AtlasRow
    from compare.plots import label_offsets, run_labels

    rows = [AtlasRow(f"runs/n{n}", {"noise": n, "sequences": s}, "transient_icl", None, "")
            for n, s in ((0.5, 12_800_000), (0.6, 25_600_000), (0.7, 12_800_000))]
    assert run_labels(rows) == {"runs/n0.5": "noise 0.5", "runs/n0.6": "noise 0.6, 25.6M", "runs/n0.7": "noise 0.7"}
    assert run_labels([AtlasRow("runs/a", {}, "ciwl_only", None, "")]) == {"runs/a": "a"}
    # a run that stopped early is labelled with where it stopped, not its config's length
    rows = [AtlasRow(f"runs/s{i}", {"seed": i, "sequences": 6_400_000}, "transient_icl", None, "", n)
            for i, n in enumerate((6_400_000, 6_400_000, 1_216_000))]
    assert run_labels(rows) == {"runs/s0": "seed 0", "runs/s1": "seed 1", "runs/s2": "seed 2, 1.22M"}
    # the knobs are the fields whose values differ
    from compare.atlas import differing_knobs
    assert differing_knobs([{"seed": 0, "lr": 0.1, "noise": 0.5}, {"seed": 1, "lr": 0.1, "noise": 0.6}]) == ["noise", "seed"]

    rng = np.random.default_rng(0)
    pts = np.concatenate([rng.uniform(100, 140, (8, 2)), [[300.0, 300.0]]])  # a tight cluster and a lone point
    texts = [f"noise 0.{i}5" for i in range(9)]
    frame = (0.0, 0.0, 400.0, 400.0)
    offs = label_offsets(pts, texts, 7.0, frame)
    h = 1.25 * 7.0
    boxes = [(x + dx, y + dy, x + dx + 0.6 * 7.0 * len(t), y + dy + h) for (x, y), (dx, dy), t in zip(pts, offs, texts)]
    for i, a in enumerate(boxes):
        assert frame[0] <= a[0] and a[2] <= frame[2] and frame[1] <= a[1] and a[3] <= frame[3]
        for b in boxes[i + 1:]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)
        for px, py in pts:  # no label box covers a marker's centre
            assert not (a[0] <= px <= a[2] and a[1] <= py <= a[3])
    assert offs[-1] == (8.0, 3.0)  # a lone point's label sits just above right of it
