"""The fit's search box and its first stage: screening many starts at once.

`screen` draws `starts` Latin-hypercube points of (alpha, mu1, mu2, nd_ratio) in START_BOX (plus
the paper's point, arXiv:2503.05631: alpha 0.1, mu1 0.1, mu2 0, nd_ratio 8), simulates them for
`max_steps` steps in one vmapped call (`compare.toy.simulate_batch`, recorded every `screen_every`
steps) and profiles tau on a log grid of N_TAU values for each (the trajectory does not depend on
tau); the maps are solved per (start, tau) in closed form (affine) or profiled on Z_GRID (probit;
with the ICL-on-CIWL interaction, the CIWL floor and kappa jointly on Z_GRID x KAPPA_GRID).
The screen scores the single-state map (population spreads sigma_k at 0); the refinement that
follows (`compare.fit`) starts the free sigma_k at SIGMA_START and a free kappa at the screen's
best, at least KAPPA_START.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri
from scipy.stats import qmc

from .config import FitConfig
from .curves import CURVES, Curves
from .maps import KAPPA_GRID, Z_GRID, affine_fit, interaction_scale
from .toy import problem, simulate_batch

__all__ = ["BOUNDS", "START_BOX", "N_TAU", "SIGMA_START", "KAPPA_START", "bounds", "weights", "anchors", "screen"]

# bounds of the search (natural units); tau's come from the data's span and the step budget
BOUNDS = {"alpha": (0.0, 20.0), "mu1": (0.0, 20.0), "mu2": (0.0, 5.0), "nd_ratio": (0.1, 1000.0),
          "sigma1": (0.0, 3.0), "sigma2": (0.0, 3.0), "kappa": (0.0, 20.0)}
# the box the screening starts are drawn from (log-uniform; mu2 = 0 for a quarter of them)
START_BOX = {"alpha": (0.003, 3.0), "mu1": (0.003, 3.0), "mu2": (1e-5, 0.3), "nd_ratio": (0.25, 256.0)}
N_TAU = 64
SIGMA_START = 0.3  # where a free population spread starts its refinement (the cost is even in sigma: 0 is stationary)
KAPPA_START = 0.25  # the least start of a free kappa (the cost is even in kappa too)


def bounds(curves: Curves, config: FitConfig) -> dict:
    """Bounds of every nonlinear parameter in natural units (tau's from the data span and step budget)."""
    s_max = float(curves.s[-1])
    return {**BOUNDS, "tau": (s_max / config.max_steps, s_max / config.min_steps)}


def weights(curves: Curves, scheme: str) -> dict:
    return {k: (1.0 / float(np.std(curves.y(k))) if scheme == "balanced" else 1.0) for k in CURVES}


def anchors(curves: Curves, config: FitConfig) -> dict:
    """curve -> (chance level, the toy's reference loss) when the curves have a chance level (error
    rates: the maps are anchored there, `compare.maps`), else curve -> None."""
    if curves.chance is None:
        return {k: None for k in CURVES}
    prob = problem(config.seed, tuple(config.dims), float(config.lr))
    return {"icl": (curves.chance, prob.l1_ref), "ciwl": (curves.chance, prob.l2_ref)}


def screen(curves: Curves, config: FitConfig, bnds: dict, w: dict):
    """Latin-hypercube starts, simulated in one vmapped batch; tau profiled on a grid. Returns the
    starts sorted by cost: list of (cost, theta (natural units, NONLINEAR order))."""
    fixed = config.fixed
    anchor = anchors(curves, config)
    free4 = [k for k in ("alpha", "mu1", "mu2", "nd_ratio") if k not in fixed]
    n = config.starts
    theta = np.empty((n, 4))
    u = qmc.LatinHypercube(d=max(1, len(free4)), seed=config.sample_seed).random(n) if free4 else np.zeros((n, 1))
    for j, name in enumerate(("alpha", "mu1", "mu2", "nd_ratio")):
        if name in fixed:
            theta[:, j] = fixed[name]
            continue
        lo, hi = START_BOX[name]
        x = u[:, free4.index(name)]
        if name == "mu2":  # a quarter at exactly 0 (the paper's setting), the rest log-uniform
            theta[:, j] = np.where(x < 0.25, 0.0, np.exp(np.log(lo) + (x - 0.25) / 0.75 * np.log(hi / lo)))
        else:
            theta[:, j] = np.exp(np.log(lo) + x * np.log(hi / lo))
    # the paper's point (alpha 0.1, mu1 0.1, mu2 0, nd_ratio 8) as the first start
    theta[0] = [fixed.get(k, v) for k, v in zip(("alpha", "mu1", "mu2", "nd_ratio"), (0.1, 0.1, 0.0, 8.0))]
    if not free4:
        theta = theta[:1]
    e = config.screen_every
    l1, l2, _, _ = simulate_batch(theta, config.max_steps, e, seed=config.seed, dims=config.dims, lr=config.lr)
    taus = np.array([fixed["tau"]]) if "tau" in fixed else np.geomspace(*bnds["tau"], N_TAU)
    s = curves.s
    t = np.minimum(s[None, :] / taus[:, None] / e, l1.shape[1] - 1)  # (n_tau, n) toy time in record units
    kk = np.clip(np.floor(t).astype(int), 0, l1.shape[1] - 2)
    f = t - kk
    cost = np.zeros((len(theta), len(taus)))
    kappas = [fixed.get("kappa", 0.0)] if config.interaction == "none" or "kappa" in fixed else KAPPA_GRID
    best_kappa = np.zeros((len(theta), len(taus)), int)  # index into kappas
    with np.errstate(invalid="ignore", over="ignore"):  # diverged lanes: nan, costed as inf below
        for lo in range(0, len(theta), 256):  # blocks of lanes bound the (lanes, n_tau, n) temporaries
            models = {k: rec[lo:lo + 256][:, kk] * (1 - f) + rec[lo:lo + 256][:, kk + 1] * f  # (lanes, n_tau, n)
                      for k, rec in (("icl", l1), ("ciwl", l2))}
            for i, k in enumerate(CURVES, 1):
                model = models[k]
                if config.link == "probit":  # the floor profiled on a grid of z = Phi^-1(B), like tau
                    u = 1.0 - np.sqrt(np.maximum(model, 0.0) / anchor[k][1])
                    zs = [float(ndtri(fixed[f"B{i}"]))] if f"B{i}" in fixed else Z_GRID
                    scales = [interaction_scale(models["icl"], anchor["icl"][1], kap) for kap in kappas] \
                        if k == "ciwl" and config.interaction != "none" else [1.0]
                    by_kappa = np.array([np.min([np.sum((ndtr(z * u * c) - curves.y(k)) ** 2, axis=-1) for z in zs],
                                                axis=0) for c in scales])  # (kappas, lanes, n_tau)
                    if len(scales) > 1:
                        best_kappa[lo:lo + 256] = np.argmin(np.where(np.isfinite(by_kappa), by_kappa, np.inf), axis=0)
                    cost[lo:lo + 256] += w[k] ** 2 * np.min(by_kappa, axis=0)
                    continue
                a, b = affine_fit(model, curves.y(k), fixed.get(f"A{i}"), fixed.get(f"B{i}"), anchor=anchor[k])
                r = a[..., None] * model + b[..., None] - curves.y(k)
                cost[lo:lo + 256] += w[k] ** 2 * np.sum(r * r, axis=-1)
    cost = np.where(np.isfinite(cost), cost, np.inf)
    best_tau = np.argmin(cost, axis=1)
    lane_cost = cost[np.arange(len(theta)), best_tau]
    order = np.argsort(lane_cost, kind="stable")
    out = []
    for i in order:
        a, m1, m2, nd = theta[i]
        sig = [fixed.get(f"sigma{k}", SIGMA_START if config.spread(k) else 0.0) for k in (1, 2)]
        kappa = kappas[best_kappa[i, best_tau[i]]]
        if config.interaction != "none" and "kappa" not in fixed:
            kappa = max(kappa, KAPPA_START)
        out.append((float(lane_cost[i]), np.array([a, m1, m2, taus[best_tau[i]], nd, *sig, kappa])))
    return out
