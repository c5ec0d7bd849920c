"""The fit's objective: weighted residuals of the mapped toy against the measured curves, and their
Jacobian and covariance at the optimum.

The search coordinates are the free nonlinear parameters (NONLINEAR; tau and nd_ratio in log space,
the interaction's kappa in natural units)
followed, with the probit link, by the free floors as z_k = Phi^-1(B_k) in Z_BOUNDS. The affine
maps are not searched: for a given trajectory the best (A_k, B_k) is linear least squares of y_k on
the (population-averaged) L_k, solved in closed form (variable projection, `compare.maps.affine_fit`).
The toy runs `max_steps` steps per evaluation with the compiled single-lane kernel (a fused XLA loop:
finite differences are cheaper than differentiating through the scan, whose tangents break the
fusion). Between integer steps the trajectory is linearly interpolated.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from scipy.special import ndtr, ndtri

from .config import LOG_PARAMS, NONLINEAR, FitConfig
from .curves import CURVES, Curves
from .maps import Z_BOUNDS, affine_fit, interaction_scale, population_map, population_times
from .screen import anchors
from .toy import problem

__all__ = ["Objective", "sandwich"]

TOY = [NONLINEAR.index(k) for k in ("alpha", "mu1", "mu2", "nd_ratio")]  # the kernel's theta
TAU = NONLINEAR.index("tau")
SIGMA = {k: NONLINEAR.index(f"sigma{i}") for i, k in enumerate(CURVES, 1)}
KAPPA = NONLINEAR.index("kappa")


class Objective:
    """Residuals of one fit: the data, the weights `w`, the fixed values and the free set."""

    def __init__(self, curves: Curves, config: FitConfig, w: dict):
        prob = problem(config.seed, tuple(config.dims), float(config.lr))
        self.anchors = anchors(curves, config)
        self.free, self.free_lin = config.free_params(curves.chance is not None)
        self.fixed = dict(config.fixed)
        self.horizon = config.max_steps
        self.s = curves.s
        self.ys = {k: curves.y(k) for k in CURVES}
        self.w = w
        self.single = prob.single
        self.is_log = np.array([k in LOG_PARAMS for k in self.free], bool)
        self.base = np.array([self.fixed.get(k, 0.0 if k.startswith("sigma") or k == "kappa" else 1.0) for k in NONLINEAR])
        self.interaction = config.interaction != "none"
        self.free_idx = np.array([NONLINEAR.index(k) for k in self.free], int)
        self.link = config.link
        # the probit link's floors are searched (as z = Phi^-1(B)), not projected
        self.searched_b = [k for k in ("B1", "B2") if k not in self.fixed] if self.link == "probit" else []

    def natural(self, x) -> np.ndarray:
        """Every nonlinear parameter (natural units, NONLINEAR order) from the search coordinates."""
        theta = self.base.copy()
        theta[self.free_idx] = np.where(self.is_log, np.exp(x[:len(self.free)]), x[:len(self.free)])
        return theta

    def to_x(self, theta) -> np.ndarray:
        x = np.asarray(theta, np.float64)[self.free_idx]
        return np.where(self.is_log, np.log(np.maximum(x, 1e-300)), x)

    def floors(self, x) -> dict:
        """The probit link's B1, B2 from the search coordinates (fixed ones as given)."""
        z = dict(zip(self.searched_b, x[len(self.free):]))
        return {k: float(ndtr(z[k])) if k in z else self.fixed[k] for k in ("B1", "B2")}

    def best_z(self, m: dict, curve: str) -> float:
        """The probit z = Phi^-1(B) of `curve` minimising its squared residuals at model points `m`,
        on a grid of 400 in Z_BOUNDS."""
        zs = np.linspace(*Z_BOUNDS, 400)
        losses, wts = m[curve]
        ref, scale = self.anchors[curve][1], m["scale"][curve]
        cost = [np.sum((population_map("probit", losses, wts, 0.0, ndtr(z), ref, scale) - self.ys[curve]) ** 2)
                for z in zs]
        return float(zs[int(np.nanargmin(cost))])

    def trajectory(self, theta):
        """(l1, l2) at every step 0..max_steps."""
        (l1, l2), _, _ = self.single(tuple(jnp.asarray(theta[i]) for i in TOY), self.horizon, 1)
        return np.asarray(l1), np.asarray(l2)

    def model_points(self, theta) -> dict:
        """curve -> (losses (J, n), weights (J,)): L_k at the fitted rows' toy times v s / tau for the
        population's speeds v (J = 1 at sigma_k = 0), linearly interpolated between steps; and "scale":
        curve -> the probit margin's scale (`compare.maps.interaction_scale` of the single ICL state at
        s / tau for CIWL with the interaction, else 1)."""
        traj = dict(zip(CURVES, self.trajectory(theta)))
        out = {}
        for k in CURVES:
            times, wts = population_times(self.s / theta[TAU], float(theta[SIGMA[k]]))
            out[k] = (self._at(traj[k], times), wts)
        out["scale"] = {"icl": 1.0, "ciwl": 1.0}
        if self.interaction:
            out["scale"]["ciwl"] = interaction_scale(self._at(traj["icl"], self.s / theta[TAU]), self.anchors["icl"][1],
                                                     float(theta[KAPPA]))
        return out

    def _at(self, traj: np.ndarray, times) -> np.ndarray:
        """A trajectory at toy `times`, linearly interpolated between steps, held at the horizon past it."""
        t = np.minimum(times, self.horizon)
        i = np.clip(np.floor(t).astype(int), 0, self.horizon - 1)
        f = t - i
        return traj[i] * (1 - f) + traj[i + 1] * f

    def maps(self, m: dict, x=None) -> dict:
        """curve -> (A, B): affine, in closed form on the population-mean loss; probit, B from the
        search coordinates `x` and A = (chance - B) / L_ref (the chord from (0, B) to (L_ref, chance))."""
        if self.link == "probit":
            b = self.floors(x)
            return {k: ((self.anchors[k][0] - b[f"B{i}"]) / self.anchors[k][1], b[f"B{i}"])
                    for i, k in enumerate(CURVES, 1)}
        return {k: tuple(float(v) for v in affine_fit(m[k][1] @ m[k][0], self.ys[k], self.fixed.get(f"A{i}"),
                                                      self.fixed.get(f"B{i}"), anchor=self.anchors[k]))
                for i, k in enumerate(CURVES, 1)}

    def mapped(self, m: dict, ab: dict) -> dict:
        ref = {k: (self.anchors[k][1] if self.anchors[k] is not None else None) for k in CURVES}
        return {k: population_map(self.link, m[k][0], m[k][1], *ab[k], ref[k], m["scale"][k]) for k in CURVES}

    def residual(self, x) -> np.ndarray:
        """Weighted residuals at search coordinates `x` (the affine maps solved in closed form)."""
        m = self.model_points(self.natural(x))
        f = self.mapped(m, self.maps(m, x))
        r = np.concatenate([self.w[k] * (f[k] - self.ys[k]) for k in CURVES])
        return np.where(np.isfinite(r), r, 1e3)

    def jacobian(self, theta, params: dict, bnds: dict) -> np.ndarray:
        """d(weighted residuals)/d(free nonlinear (natural units), free A, B) at the optimum. The
        nonlinear columns by central differences (one-sided at a bound), step 1e-5 relative."""
        cols = []
        ab = {k: (params[f"A{i}"], params[f"B{i}"]) for i, k in enumerate(CURVES, 1)}
        for name in self.free:
            j = NONLINEAR.index(name)
            h = 1e-5 * max(abs(theta[j]), 1e-3)
            lo, hi = bnds[name]
            up, down = theta.copy(), theta.copy()
            up[j] = min(theta[j] + h, hi)
            down[j] = max(theta[j] - h, lo)
            fu, fd = self.mapped(self.model_points(up), ab), self.mapped(self.model_points(down), ab)
            cols.append(np.concatenate([self.w[k] * (fu[k] - fd[k]) / (up[j] - down[j]) for k in CURVES]))
        m = self.model_points(theta)
        zeros = np.zeros_like(self.s)
        for name in self.free_lin:
            k = CURVES[int(name[1]) - 1]
            losses, wts = m[k]
            if self.link == "probit":  # y = Phi(z u c), u = 1 - sqrt(L / L_ref), c the interaction's scale,
                z = float(ndtri(params[name]))  # z = Phi^-1(B): dy/dB = phi(z u c) u c / phi(z)
                u = (1.0 - np.sqrt(np.maximum(losses, 0.0) / self.anchors[k][1])) * m["scale"][k]
                col = wts @ (np.exp(-0.5 * (z * u) ** 2 + 0.5 * z * z) * u)
            elif self.anchors[k] is not None:  # y = B + (chance - B) L / L_ref: dy/dB = 1 - L / L_ref
                col = 1.0 - wts @ losses / self.anchors[k][1]
            else:
                col = wts @ losses if name[0] == "A" else np.ones_like(self.s)
            cols.append(np.concatenate([self.w[c] * col if c == k else zeros for c in CURVES]))
        return np.column_stack(cols) if cols else np.zeros((2 * self.s.size, 0))


def sandwich(jac: np.ndarray, resid: np.ndarray) -> np.ndarray:
    """Heteroscedasticity-consistent covariance (HC2) of a least-squares estimate: (J^T J)^-1 J^T
    diag(r_i^2 / (1 - h_i)) J (J^T J)^-1, h_i the leverages (the diagonal of J (J^T J)^-1 J^T).
    Unlike sigma^2 (J^T J)^-1 it does not assume one noise level for every row: evaluation noise
    grows with the level of a curve and differs between the curves."""
    bread = np.linalg.pinv(jac.T @ jac)
    lev = np.clip(np.einsum("ij,jk,ik->i", jac, bread, jac), 0.0, 1.0 - 1e-12)
    meat = (jac * (resid ** 2 / (1.0 - lev))[:, None]).T @ jac
    return bread @ meat @ bread
