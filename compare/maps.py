"""How a toy loss becomes a measured curve: the link maps, the population average, R^2.

The link (`link_map`), for curve k (L1 for ICL, L2 for CIWL):
- affine: y = A_k L_k + B_k, A_k >= 0; on error-rate curves anchored at chance,
  A_k = (chance - B_k) / L_k,ref (the toy's reference loss, the mechanism absent, is the evaluator
  at chance; B_k in [0, chance] is the error left when the mechanism is complete);
- probit (error rates only): y = Phi(Phi^-1(B_k) (1 - sqrt(L_k / L_k,ref))): a margin linear in the
  mechanism's strength 1 - sqrt(L / L_ref), Gaussian over sequences; chance at L_ref, B_k at L = 0.

The population average (`population_times`): an evaluator averages over many sequences whose
classes the network learned at different times, so its curve is a mean over a population of
mechanism states, not one. With a log-normal spread sigma_k of per-class speed, curve k at
sequences s is the mean of the link over speeds v, log v ~ N(0, sigma_k^2), of the toy at time
v s / tau: a midpoint rule in probability, `NODES` equal-weight speeds at the normal quantiles
(j + 1/2) / NODES (the toy's curves are nearly steps in log time, on which Gauss-Hermite converges
slowly: 9 of its nodes are 10% off, 101 quantile nodes 0.1%); times past the simulated horizon are
held at it. sigma_k = 0 is the single-state map. For the affine link the mean of the maps is the map of
the mean loss, so the affine maps still solve in closed form (variable projection).

The ICL-on-CIWL interaction (`interaction_scale`; `coop compare --interaction icl-on-ciwl`, probit
only). A CIWL evaluator sequence (`transformer.data`, "ciwl") holds no exemplar of the query's class;
one context exemplar (class c1) carries the query's label, the other (class c2) its own. The ICL
mechanism matches the query to the most similar context exemplar and copies its label: which of the
two is the more similar is unrelated to the target, so on these sequences ICL votes for the target
or against it at random. Write the network's margin for the target label on one sequence as

    M = a2 u2 + a1 u1 xi + eps,   u_k = 1 - sqrt(L_k / L_k_ref) (mechanism k's strength, 0 to 1),

CIWL's part a2 u2 (a2 > 0; the probit link's margin), ICL's vote a1 u1 xi (a1 >= 0, xi of mean 0
and variance 1 over sequences: a random sign times a spread of match qualities, taken Gaussian),
eps ~ N(0, s^2) the sequence-to-sequence noise of the CIWL margin, independent of xi. M is then
Gaussian with mean a2 u2 and variance s^2 + a1^2 u1^2, and the error rate is

    P(M < 0) = Phi(-a2 u2 / sqrt(s^2 + a1^2 u1^2)) = Phi(z2 u2 / sqrt(1 + kappa^2 u1^2)),

z2 = -a2 / s = Phi^-1(B2) (B2 the floor with CIWL complete and ICL absent) and kappa = a1 / s >= 0,
one parameter. kappa = 0 is the probit map; at u2 = 0 the error is chance (0.5) whatever u1: ICL
adds spread, not bias. On the ICL evaluator the query's class label is not in context, so CIWL has
no vote there and the ICL curve keeps its map. With the CIWL population the CIWL map is averaged
over the per-class speeds of u2 as before, while u1 is the single ICL state at s / tau (ICL is not
class-specific): the scale 1 / sqrt(1 + kappa^2 u1^2) multiplies every node's margin.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri

__all__ = ["MAPPING", "PROBIT_MAPPING", "POPULATION_MAPPING", "INTERACTION_MAPPING", "Z_BOUNDS", "Z_GRID", "KAPPA_GRID",
           "NODES", "affine_fit", "affine_map", "link_map", "interaction_scale", "population_times", "population_map",
           "r_squared"]

Z_BOUNDS = (-6.0, -0.01)  # the probit link's z_k = Phi^-1(B_k): B_k from 1e-9 to 0.496
Z_GRID = np.linspace(-4.0, -0.1, 24)  # the screen's profile of z_k (B_k from 3e-5 to 0.46)
KAPPA_GRID = (0.0, 0.5, 1.0, 2.0, 4.0)  # the screen's profile of the interaction's kappa
NODES = 101  # equal-probability speeds of the population average

MAPPING = (
    "icl_loss(s) ~ A1*L1(s/tau) + B1, ciwl_loss(s) ~ A2*L2(s/tau) + B2, A1, A2 >= 0; s = sequences seen, "
    "tau = sequences per toy GD step (lr 1), toy step 0 = the draw's initial vectors at s = 0, L linearly "
    "interpolated between steps; mechanism 2's vector d steps at rate rho = n_d / (n_a * nd_ratio) "
    "(nd_ratio = effective n_d / n_a)"
)
PROBIT_MAPPING = (
    "error_k(s) ~ Phi(Phi^-1(B_k) * (1 - sqrt(L_k(s/tau) / L_k_ref))), k = icl (L1), ciwl (L2); tau, the "
    "interpolation and rho as in the affine mapping"
)
POPULATION_MAPPING = (
    "; population: curve k is the mean of its map over per-class speeds v, log v ~ N(0, sigma_k^2), of the toy at "
    "v*s/tau (101 equal-probability speeds)"
)
INTERACTION_MAPPING = (
    "; interaction icl-on-ciwl: the CIWL map's margin divided by sqrt(1 + kappa^2 * u1(s/tau)^2), u1 = 1 - "
    "sqrt(L1 / L1_ref) the single ICL state"
)


def affine_fit(model, y, a_fixed=None, b_fixed=None, anchor=None):
    """Least-squares (A, B) of y ~ A model + B along the last axis, A >= 0 (A = 0, B = mean y when the
    free slope is negative or the model constant); a given A or B is kept. With `anchor` = (level,
    ref): A = (level - B) / ref and B, the curve's floor, fitted in [0, level]. Broadcasts over
    leading axes (the screen's lanes and taus)."""
    model, y = np.asarray(model, np.float64), np.asarray(y, np.float64)
    shape = model.shape[:-1]
    if anchor is not None:
        level, ref = anchor
        u = model / ref
        if b_fixed is not None:
            b = np.broadcast_to(b_fixed, shape)
        else:
            v = 1.0 - u
            svv = np.sum(v * v, axis=-1)
            ok = svv > 0
            b = np.where(ok, np.sum((y - level * u) * v, axis=-1) / np.where(ok, svv, 1.0), np.mean(y, axis=-1))
            b = np.clip(b, 0.0, level)
        return (level - b) / ref, b
    if a_fixed is not None and b_fixed is not None:
        return np.broadcast_to(a_fixed, shape), np.broadcast_to(b_fixed, shape)
    if a_fixed is not None:
        a = np.broadcast_to(a_fixed, shape)
        return a, np.mean(y - a[..., None] * model, axis=-1)
    if b_fixed is not None:
        sxx = np.sum(model * model, axis=-1)
        sxy = np.sum(model * (y - b_fixed), axis=-1)
        ok = sxx > 0
        a = np.where(ok, np.maximum(sxy / np.where(ok, sxx, 1.0), 0.0), 0.0)
        return a, np.broadcast_to(b_fixed, a.shape)
    mm, ym = np.mean(model, axis=-1), np.mean(y, axis=-1)
    dm = model - mm[..., None]
    sxx = np.sum(dm * dm, axis=-1)
    sxy = np.sum(dm * (y - ym[..., None]), axis=-1)
    ok = sxx > 0
    a = np.where(ok, np.maximum(sxy / np.where(ok, sxx, 1.0), 0.0), 0.0)
    return a, ym - a * mm


def affine_map(model, measured, a_fixed=None, b_fixed=None) -> tuple[float, float]:
    """(A, B) minimising sum (A model + B - measured)^2 with A >= 0."""
    a, b = affine_fit(model, measured, a_fixed, b_fixed)
    return float(a), float(b)


def link_map(link: str, loss, a: float, b: float, l_ref: float | None = None, scale=1.0) -> np.ndarray:
    """A toy loss mapped to the measured curve: affine, a L + b; probit, Phi(Phi^-1(b) (1 - sqrt(L /
    l_ref)) scale) (`a` unused; `scale` the interaction's, `interaction_scale`, 1 without it)."""
    loss = np.asarray(loss, np.float64)
    if link == "affine":
        return a * loss + b
    return ndtr(ndtri(b) * (1.0 - np.sqrt(np.maximum(loss, 0.0) / l_ref)) * scale)


def interaction_scale(l1, l1_ref: float, kappa: float) -> np.ndarray:
    """1 / sqrt(1 + kappa^2 u1^2), u1 = 1 - sqrt(L1 / L1_ref): the CIWL margin's scale under ICL's
    random-sign vote (the module docstring derives it); 1 at kappa = 0."""
    u1 = 1.0 - np.sqrt(np.maximum(np.asarray(l1, np.float64), 0.0) / l1_ref)
    return 1.0 / np.sqrt(1.0 + (kappa * u1) ** 2)


def population_times(t, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(times (J, n), weights (J,)): the toy times v t of the population average at spread `sigma`
    (one node of weight 1 at sigma = 0)."""
    t = np.asarray(t, np.float64)
    if sigma == 0:
        return t[None], np.ones(1)
    x = ndtri((np.arange(NODES) + 0.5) / NODES)
    return np.exp(sigma * x)[:, None] * t[None], np.full(NODES, 1.0 / NODES)


def population_map(link: str, losses, weights, a: float, b: float, l_ref: float | None = None,
                   scale=1.0) -> np.ndarray:
    """The population mean of the link over node losses `losses` (J, ...) with `weights` (J,); `scale`
    (broadcast against one node's losses) as in `link_map`."""
    mapped = link_map(link, losses, a, b, l_ref, scale)
    return np.tensordot(weights, mapped, axes=(0, 0))


def r_squared(measured, predicted) -> float:
    """1 - SS_res / SS_tot, SS_tot about the mean of `measured`."""
    y, f = np.asarray(measured, np.float64), np.asarray(predicted, np.float64)
    return float(1.0 - np.sum((y - f) ** 2) / np.sum((y - np.mean(y)) ** 2))
