"""Fitting the toy model's loss curves to measured ones (a run's ICL and CIWL evaluators).

The fitted model of the measurements (docs/compare.md gives the method and its reasons):

    y_k(s) ~ map_k(L_k(s / tau)),   k = ICL (L1), CIWL (L2),

the toy (`compare.toy`: the paper's four-vector model, arXiv:2503.05631, with parameters alpha, mu1,
mu2 and the speed ratio nd_ratio, trained by gradient descent with lr 1 from a fixed draw) run for
`max_steps` steps, tau the sequences per toy step, the map an affine or probit link anchored at
chance for error rates (`compare.maps`), optionally averaged over a population of per-class
speeds (sigma_k). `fit` runs, top to bottom: the checks that need the data, the screen of many
starts (`compare.screen`), least-squares refinement of the best (`compare.objective`), the maps
and R^2 at the optimum, the standard errors (HC2 sandwich) and which parameters are poorly
determined, and the two verdicts (`compare.result`). Toy computations run in float64.
"""

from __future__ import annotations

import math
import time

import numpy as np
from scipy.optimize import least_squares
from scipy.special import ndtr

from toymodel.precision import float64

from .config import LOG_PARAMS, NONLINEAR, FitConfig
from .curves import CURVES, Curves
from .maps import Z_BOUNDS, r_squared
from .objective import Objective, sandwich
from .result import FitResult, curve_verdict, toy_on_sequences
from .screen import bounds, screen, weights
from .toy import problem, toy_outcome

__all__ = ["fit"]


@float64
def fit(curves: Curves, config: FitConfig = FitConfig()) -> FitResult:
    """Fit the toy model to `curves` (see the module docstring); deterministic for a given config."""
    t_start = time.perf_counter()
    config = config.for_curves(curves.chance is not None)
    bnds = bounds(curves, config)
    _check(curves, config, bnds)
    w = weights(curves, config.weights)
    obj = Objective(curves, config, w)
    n_free = len(obj.free) + len(obj.free_lin)
    if curves.used.sum() < n_free:
        raise ValueError(f"{int(curves.used.sum())} rows to fit, fewer than the {n_free} free parameters")

    t0 = time.perf_counter()
    screened = screen(curves, config, bnds, w)
    t_screen = time.perf_counter() - t0
    t0 = time.perf_counter()
    x_best, starts = _refine(obj, screened, config, bnds)
    t_refine = time.perf_counter() - t0
    theta = _snap(obj.natural(x_best), obj, bnds)

    # the maps, the fitted curves and R^2 at the optimum
    m = obj.model_points(theta)
    ab = obj.maps(m, x_best)
    params = dict(zip(NONLINEAR, map(float, theta)))
    for i, k in enumerate(CURVES, 1):
        params[f"A{i}"], params[f"B{i}"] = ab[k]
    fitted = obj.mapped(m, ab)
    r2 = {k: r_squared(curves.y(k), fitted[k]) for k in CURVES}

    # standard errors over every free parameter (nonlinear, A, B), natural units
    free_all = obj.free + obj.free_lin
    resid = np.concatenate([w[k] * (fitted[k] - curves.y(k)) for k in CURVES])
    dof = int(resid.size - len(free_all))
    sigma2 = float(np.sum(resid ** 2) / dof) if dof > 0 else float("nan")
    se, corr = _standard_errors(obj.jacobian(theta, params, bnds), resid, free_all)
    at_bound = _at_bound(obj, params, bnds)
    poor = _poorly_determined(free_all, params, se, corr, at_bound)

    # the verdicts: the toy at the fitted point for the data's span in steps
    prob = problem(config.seed, tuple(config.dims), float(config.lr))
    own = int(min(math.ceil(float(curves.s[-1]) / params["tau"]), config.max_steps))
    l1_all, l2_all = obj.trajectory(theta)  # to the horizon: a population's fast classes run past the data's span
    trajectory = {"l1": l1_all, "l2": l2_all}
    toy = {"steps": own, **toy_outcome(l1_all[:own + 1], l2_all[:own + 1], prob.l1_ref, prob.l2_ref),
           "rho": prob.rho_scale / params["nd_ratio"],
           "measured_icl_loss_min_sequences": float(curves.s[int(np.argmin(curves.y("icl")))])}
    toy["l1_min_sequences"] = toy["l1_min_step"] * params["tau"]
    result = FitResult(params=params, se=se, free=free_all, at_bound=at_bound, poorly_determined=poor,
                       correlation=corr, sigma2=sigma2, dof=dof, r2=r2, weights=w, curves=curves, fitted=fitted,
                       toy=toy, verdict={}, trajectory=trajectory, starts=starts, bounds={**bnds}, config=config,
                       timing={"screen_s": t_screen, "refine_s": t_refine})
    result.verdict = curve_verdict(curves, toy_on_sequences(result))
    result.timing["total_s"] = time.perf_counter() - t_start
    return result


def _check(curves: Curves, config: FitConfig, bnds: dict) -> None:
    """The checks of a config that need the curves (ValueError naming the parameter)."""
    if curves.chance is not None and {"A1", "A2"} & set(config.fixed):
        raise ValueError("A1 and A2 follow from B1 and B2 on error-rate curves (anchored at chance): fix B1, B2 instead")
    if "tau" in config.fixed and not bnds["tau"][0] <= config.fixed["tau"] <= bnds["tau"][1]:
        raise ValueError(f"fixed tau={config.fixed['tau']:g} outside [{bnds['tau'][0]:g}, {bnds['tau'][1]:g}] "
                         f"(s_max / max_steps .. s_max / min_steps)")
    if config.link == "probit" and curves.chance is None:
        raise ValueError("the probit link maps to error rates: it needs accuracy or error-rate curves")


def _refine(obj: Objective, screened: list, config: FitConfig, bnds: dict) -> tuple[np.ndarray, list]:
    """Least squares (trust-region reflective, bounds, central-difference Jacobian) from the best
    `refine` screened starts; returns the best end point's search coordinates and every start's record."""
    n_b = len(obj.searched_b)
    lo = np.concatenate([obj.to_x(np.array([bnds[k][0] for k in NONLINEAR])), np.full(n_b, Z_BOUNDS[0])])
    hi = np.concatenate([obj.to_x(np.array([bnds[k][1] for k in NONLINEAR])), np.full(n_b, Z_BOUNDS[1])])
    starts, best = [], None
    for cost0, theta0 in screened[:config.refine]:
        if not math.isfinite(cost0):
            continue
        x0 = obj.to_x(theta0)
        if n_b:  # the probit floors start from their best on a fine grid, given the start's trajectory
            m0 = obj.model_points(theta0)
            x0 = np.concatenate([x0, [obj.best_z(m0, CURVES[int(k[1]) - 1]) for k in obj.searched_b]])
        if x0.size:
            span = hi - lo
            x0 = np.clip(x0, lo + 1e-9 * span, hi - 1e-9 * span)
            sol = least_squares(obj.residual, x0, jac="3-point", bounds=(lo, hi), method="trf", x_scale="jac",
                                max_nfev=config.max_nfev, xtol=1e-10, ftol=1e-12, gtol=1e-10)
            x, cost, nfev, status = sol.x, float(2 * sol.cost), int(sol.nfev), int(sol.status)
        else:
            x, nfev, status = x0, 0, 0
            cost = float(np.sum(obj.residual(x) ** 2))
        theta = obj.natural(x)
        starts.append({"screen_cost": cost0, "cost": cost, "nfev": nfev, "status": status,
                       "start": dict(zip(NONLINEAR, map(float, theta0))),
                       "end": {**dict(zip(NONLINEAR, map(float, theta))), **{k: obj.floors(x)[k] for k in obj.searched_b}}})
        if best is None or cost < best[0]:
            best = (cost, x)
    if best is None:
        raise ValueError("every start diverged or gave non-finite losses")
    return best[1], starts


def _snap(theta: np.ndarray, obj: Objective, bnds: dict) -> np.ndarray:
    """The search stays strictly inside its bounds: a free parameter within 1e-9 of one is put on it."""
    theta = theta.copy()
    for j, k in enumerate(NONLINEAR):
        if k in obj.free:
            lo, hi = bnds[k]
            tol = 1e-9 * (theta[j] if k in LOG_PARAMS else hi - lo)
            theta[j] = lo if theta[j] - lo <= tol else hi if hi - theta[j] <= tol else theta[j]
    return theta


def _standard_errors(jac: np.ndarray, resid: np.ndarray, free: list) -> tuple[dict, np.ndarray]:
    """(parameter -> standard error, correlation matrix) from the HC2 sandwich (`objective.sandwich`)."""
    if not free:
        return {}, np.zeros((0, 0))
    cov = sandwich(jac, resid)
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(se, se)
    return {k: float(v) for k, v in zip(free, se)}, np.where(np.isfinite(corr), corr, 0.0)


def _at_bound(obj: Objective, params: dict, bnds: dict) -> list:
    """The free parameters on a bound of the search (a slope A_k at 0, an anchored floor at 0 or chance)."""
    out = []
    for k in obj.free:
        lo, hi = bnds[k]
        tol = 1e-6 * (params[k] if k in LOG_PARAMS else hi - lo)
        if params[k] - lo <= tol or hi - params[k] <= tol:
            out.append(k)
    out += [k for k in ("A1", "A2") if k in obj.free_lin and params[k] == 0.0]
    if obj.link == "probit":
        out += [k for k in obj.searched_b if min(abs(params[k] - ndtr(z)) for z in Z_BOUNDS) <= 1e-9 * params[k]]
    else:
        out += [f"B{i}" for i, k in enumerate(CURVES, 1) if f"B{i}" in obj.free_lin and obj.anchors[k] is not None
                and params[f"B{i}"] in (0.0, obj.anchors[k][0])]
    return out


def _poorly_determined(free: list, params: dict, se: dict, corr: np.ndarray, at_bound: list) -> dict:
    """name -> why: on a bound, a standard error above half the value, or |correlation| > 0.95."""
    poor = {}
    for i, k in enumerate(free):
        reasons = []
        if k in at_bound:
            reasons.append("on a bound (its standard error is not meaningful)")
        if not np.isfinite(se[k]) or se[k] > 0.5 * abs(params[k]):
            reasons.append(f"se {se[k]:.3g} > half its value")
        partners = [j for j in range(len(free)) if j != i and abs(corr[i, j]) > 0.95]
        if partners:
            reasons.append("correlation > 0.95 with " + ", ".join(f"{free[j]} ({corr[i, j]:+.3f})" for j in partners))
        if reasons:
            poor[k] = "; ".join(reasons)
    return poor
