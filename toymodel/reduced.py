"""The exact reduced dynamics: two scalars per vector, derived with sympy.

Why it is exact. Every term of the loss depends on a vector v only through x = v·v* and y = |v|²
(|T* − T|² = |a*|²|b*|²|c*|² − 2 x_a x_b x_c + y_a y_b y_c for T = a⊗b⊗c, and |a⊗d|² = y_a y_d), so

    ∂L/∂v = (∂L/∂x) v* + 2 (∂L/∂y) v,

a combination of v* and v. Gradient descent, gradient flow and any optimiser that is linear in the
gradient (SGD, heavy-ball momentum) therefore keep v in span{v*, v(0)}. Write

    v = p v* + q e,    e = unit vector along the part of v(0) orthogonal to v*,  s = |v*|².

Then x = p s, y = p² s + q², and in these coordinates gradient descent in R^n is

    p ← p − lr · (1/s) ∂L/∂p,      q ← q − lr · ∂L/∂q,

(gradient descent with the metric diag(s, 1) of the basis {v*, e}). The model is 8 scalars
(p_a..p_d, q_a..q_d) whatever the dimensions; (p, q) = (1, 0) is the target.

The losses are written cancellation-free: v* and e are orthogonal in every factor, so the 8 tensor
products of {v*, e} over the three factors are mutually orthogonal and

    |T* − T|² = (1 − p_a p_b p_c)² s_a s_b s_c + Σ_{S ⊆ {a,b,c}, S ≠ ∅} Π_{i∈S} q_i² Π_{i∉S} p_i² s_i,

a sum of non-negative terms, accurate even when the loss is 1e-25. `derive()` builds these
expressions, `check_derivation()` proves them equal to the invariant form above, and sympy
differentiates them into the vector field; `lambdify` turns that into jax code (the fast path).

Partial clamps. Hold the first K coordinates of v at the target's: v = (v*_C, u), v* = (v*_C, u*),
only u free. Then x = s_C + u·u* and y = s_C + |u|² (s_C = |v*_C|²): the clamped part adds a
constant to both invariants, ∂L/∂u = (∂L/∂x) u* + 2 (∂L/∂y) u, and u stays in span{u*, u(0)}.
With u = p u* + q e (e ⊥ u*, unit, s = |u*|² now the norm² of the *free* part of the target),

    x = s_C + p s,    y = s_C + p² s + q²,

and gradient descent on u is the same update p ← p − lr (p G − H), q ← q − lr q G, with G and H
evaluated at these invariants: still 2 scalars per vector, exact. For the losses, the whole
vector is v = P v* + Q E with E ⊥ v* and, with S = s + s_C (cancellation-free again),

    P = 1 − (1 − p) s / S,    Q² = q² + (1 − p)² s s_C / S,

so the losses above apply to (P, Q, S) unchanged. `check_derivation()` proves all of this too.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import sympy as sp

from .draws import Draw
from .loss import LossParams, Vectors, aggregation

# ---------------------------------------------------------------------------------------------
# symbolic derivation
# ---------------------------------------------------------------------------------------------

P = sp.symbols("p_a p_b p_c p_d", real=True)
Q = sp.symbols("q_a q_b q_c q_d", real=True)
S = sp.symbols("s_a s_b s_c s_d", positive=True)
K1, K2, KC = sp.symbols("k_1 k_2 k_c", positive=True)  # aggregation constants (1/N for mean)
ALPHA, MU1, MU2 = sp.symbols("alpha mu_1 mu_2", nonnegative=True)
A, B, C, D = range(4)


def _x(i):
    return P[i] * S[i]


def _y(i):
    return P[i] ** 2 * S[i] + Q[i] ** 2


def residual_sq(factors) -> sp.Expr:
    """|v_i*⊗v_j*⊗v_k* − v_i⊗v_j⊗v_k|² in the cancellation-free form (module docstring).

    With u = p² s and w = q² (so y = u + w), the sum over non-empty subsets is written in nested
    form: Π(u + w) − Π u = w_i y_j y_k + u_i (w_j y_k + u_j w_k), every term non-negative.
    """
    i, j, k = factors
    u = {m: P[m] ** 2 * S[m] for m in factors}
    w = {m: Q[m] ** 2 for m in factors}
    head = (1 - P[i] * P[j] * P[k]) ** 2 * S[i] * S[j] * S[k]
    return head + w[i] * _y(j) * _y(k) + u[i] * (w[j] * _y(k) + u[j] * w[k])


def residual_sq_invariant(factors) -> sp.Expr:
    """The same quantity from the invariants: Π s_i − 2 Π x_i + Π y_i."""
    return sp.Mul(*(S[i] for i in factors)) - 2 * sp.Mul(*(_x(i) for i in factors)) + sp.Mul(*(_y(i) for i in factors))


SF, SC = sp.symbols("s_F s_C", positive=True)  # a partially clamped vector: free and clamped parts of |v*|²


def whole_coordinates(p, q, s, s_clamped):
    """(P, Q², S): the whole vector as P v* + Q E (E ⊥ v*) of a partially clamped vector whose free
    part is p u* + q e, with s = |u*|² and s_clamped = |v*_C|² (module docstring). Works on sympy
    expressions and on arrays alike."""
    total = s + s_clamped
    return 1 - (1 - p) * s / total, q * q + (1 - p) ** 2 * s * s_clamped / total, total


XS = sp.symbols("X_a X_b X_c X_d", real=True)  # stand for x = p s (= v·v*)
YS = sp.symbols("Y_a Y_b Y_c Y_d", real=True)  # stand for y = p² s + q² (= |v|²)
W1, W2 = sp.symbols("W_1 W_2", real=True)  # stand for k1 (L2 + mu2) and k2 (L1 + mu1)


@dataclass(frozen=True)
class Derivation:
    """Symbolic reduced model.

    `l1`, `l2`, `competition`, `loss`: functions of (p, q, s, k, alpha, mu), cancellation-free.
    The vector field comes as two factors per vector, `shrink[v]` (G_v) and `pull[v]` (H_v):

        (1/s_v) ∂L/∂p_v = p_v G_v − H_v,      ∂L/∂q_v = q_v G_v,

    so gradient descent scales v by (1 − lr G_v) and pulls it towards v* by lr H_v. They are
    written in symbols for values shared by all components, computed once per step: XS, YS (the
    invariants) and W1 = k1 (L2 + mu2), W2 = k2 (L1 + mu1) (the product's cross weights).
    """

    l1: sp.Expr
    l2: sp.Expr
    competition: sp.Expr
    loss: sp.Expr
    shrink: tuple  # G_a .. G_d
    pull: tuple  # H_a .. H_d


@functools.cache
def derive() -> Derivation:
    """Build the reduced loss and its vector field with sympy (cached; about a second)."""
    l1 = K1 / 2 * residual_sq((A, B, C))
    l2 = K2 / 2 * residual_sq((D, B, C))
    comp = KC / 2 * _y(A) * _y(D)
    loss = (l1 + MU1) * (l2 + MU2) + ALPHA * comp
    # Chain rule through the invariants X = p s, Y = p² s + q² of L = (L1 + mu1)(L2 + mu2) + alpha C:
    #   (1/s_v) ∂L/∂p_v = ∂L/∂X_v + 2 p_v ∂L/∂Y_v,   ∂L/∂q_v = 2 q_v ∂L/∂Y_v,
    # so G_v = 2 ∂L/∂Y_v and H_v = −∂L/∂X_v, with the product rule giving the weights W1, W2.
    # (inv1, inv2 are L1, L2 in the invariants up to their constant, which no derivative sees.)
    inv1 = K1 / 2 * (-2 * XS[A] * XS[B] * XS[C] + YS[A] * YS[B] * YS[C]) / K1
    inv2 = K2 / 2 * (-2 * XS[D] * XS[B] * XS[C] + YS[D] * YS[B] * YS[C]) / K2
    inv_c = KC / 2 * YS[A] * YS[D]

    def combine(deriv):
        return sp.factor_terms(W1 * deriv(inv1) + W2 * deriv(inv2) + ALPHA * deriv(inv_c))

    shrink = tuple(combine(lambda e, i=i: 2 * sp.diff(e, YS[i])) for i in range(4))
    pull = tuple(combine(lambda e, i=i: -sp.diff(e, XS[i])) for i in range(4))
    return Derivation(l1, l2, comp, loss, shrink, pull)


def check_derivation() -> bool:
    """True if (1) the cancellation-free residuals equal the invariant form identically,
    (2) p G − H and q G, with every shared symbol substituted, equal (1/s)∂L/∂p and ∂L/∂q, and
    (3) for each vector partially clamped: (P, Q², S) have the invariants x = s_C + p s_F,
    y = s_C + p² s_F + q², and p G − H, q G at those invariants are (1/s_F)∂L/∂p and ∂L/∂q of the
    loss written in (P, Q, S). About 5 s."""
    if not all(sp.expand(residual_sq(f) - residual_sq_invariant(f)) == 0 for f in ((A, B, C), (D, B, C))):
        return False
    der = derive()
    subs = {W1: K1 * (der.l2 + MU2), W2: K2 * (der.l1 + MU1)}
    subs |= {XS[i]: _x(i) for i in range(4)} | {YS[i]: _y(i) for i in range(4)}
    for i in range(4):
        g, h = der.shrink[i].subs(subs), der.pull[i].subs(subs)
        if sp.expand(P[i] * g - h - sp.diff(der.loss, P[i]) / S[i]) != 0:
            return False
        if sp.expand(Q[i] * g - sp.diff(der.loss, Q[i])) != 0:
            return False
    for i in range(4):
        p, q = P[i], Q[i]
        big_p, big_q2, total = whole_coordinates(p, q, SF, SC)
        x, y = SC + p * SF, SC + p**2 * SF + q**2
        if sp.simplify(big_p * total - x) != 0 or sp.simplify(big_p**2 * total + big_q2 - y) != 0:
            return False
        clamped = {p: big_p, q: sp.sqrt(big_q2), S[i]: total}  # the loss sees Q only as Q²
        loss = der.loss.xreplace(clamped)
        at = {k: v.xreplace(clamped) for k, v in subs.items()} | {XS[i]: x, YS[i]: y}
        g, h = der.shrink[i].subs(at), der.pull[i].subs(at)
        if sp.cancel(sp.together(sp.diff(loss, p) / SF - (p * g - h))) != 0:
            return False
        if sp.cancel(sp.together(sp.diff(loss, q) - q * g)) != 0:
            return False
    return True


# ---------------------------------------------------------------------------------------------
# compiled (jax) form
# ---------------------------------------------------------------------------------------------

_ARGS = (*P, *Q, *S, K1, K2, KC, ALPHA, MU1, MU2)


@functools.cache
def _compiled():
    der = derive()
    terms = sp.lambdify(_ARGS, [der.l1, der.l2, der.competition], modules="jax", cse=True)
    field = sp.lambdify((*_ARGS, *XS, *YS, W1, W2), [*der.shrink, *der.pull], modules="jax", cse=True)
    return terms, field


class Constants(NamedTuple):
    """Everything the reduced dynamics needs besides the state: s (4,), the norm² of each target's
    free part (all of it unless the vector is partially clamped), (k1, k2, kc, alpha, mu1, mu2),
    and per vector the norm² of its clamped part if it is partially clamped, else None (static:
    vectors without a partial clamp compile to exactly the unclamped code)."""

    s: jnp.ndarray
    coeffs: jnp.ndarray
    clamped: tuple = (None, None, None, None)


def constants(s, dims, params: LossParams, clamped=(None, None, None, None)) -> Constants:
    """Constants for free-part target norms² `s` (4,), dimensions `dims`, loss hyperparameters and
    clamped-part norms² `clamped` (per vector, None if not partially clamped; see `reduce`)."""
    k = aggregation(dims, params.aggregate).k
    coeffs = jnp.asarray([*k, params.alpha, params.mu1, params.mu2], jnp.float64)
    return Constants(jnp.asarray(s, jnp.float64), coeffs, tuple(clamped))


# The state is (p, q), each a sequence of 4 (a tuple of scalars, or an array indexed along its
# first axis). A tuple of scalars keeps a vmapped batch in structure-of-arrays layout: each of the
# 8 state scalars is one contiguous vector over the batch, with no stacking in the loop.


def _args(p, q, const: Constants):
    """The lambdified functions' arguments: (P, Q, S) of the whole vectors, then the coefficients."""
    s, c = const.s, const.coeffs
    big_p, big_q, big_s = [p[i] for i in range(4)], [q[i] for i in range(4)], [s[i] for i in range(4)]
    for i, s_clamped in enumerate(const.clamped):
        if s_clamped is not None:
            big_p[i], q2, big_s[i] = whole_coordinates(p[i], q[i], s[i], s_clamped)
            big_q[i] = jnp.sqrt(q2)
    return (*big_p, *big_q, *big_s, *(c[i] for i in range(6)))


def loss_terms(p, q, const: Constants):
    """(loss, l1, l2, competition) at reduced state (p, q)."""
    terms, _ = _compiled()
    args = _args(p, q, const)
    l1, l2, comp = terms(*args)
    alpha, mu1, mu2 = args[-3:]
    return (l1 + mu1) * (l2 + mu2) + alpha * comp, l1, l2, comp


def shrink_pull(p, q, const: Constants):
    """(G, H), each a tuple of 4: the field is (1/s)∂L/∂p = p G − H and ∂L/∂q = q G."""
    terms, f = _compiled()
    args = _args(p, q, const)
    l1, l2, _ = terms(*args)
    x, y = invariants(p, q, const)
    k1, k2, _, _, mu1, mu2 = args[-6:]
    out = f(*args, *x, *y, k1 * (l2 + mu2), k2 * (l1 + mu1))
    return tuple(out[:4]), tuple(out[4:])


def field(p, q, const: Constants):
    """The vector field (F_p, F_q), each a tuple of 4: gradient descent is p −= lr F_p, q −= lr F_q."""
    g, h = shrink_pull(p, q, const)
    return tuple(p[i] * g[i] - h[i] for i in range(4)), tuple(q[i] * g[i] for i in range(4))


def invariants(p, q, const: Constants):
    """x = v·v* = p s (+ s_C) and y = |v|² = p² s + q² (+ s_C), each a tuple of 4."""
    s = const.s
    x = [p[i] * s[i] for i in range(4)]
    y = [p[i] ** 2 * s[i] + q[i] ** 2 for i in range(4)]
    for i, s_clamped in enumerate(const.clamped):
        if s_clamped is not None:
            x[i], y[i] = x[i] + s_clamped, y[i] + s_clamped
    return tuple(x), tuple(y)


# ---------------------------------------------------------------------------------------------
# between full vectors and the reduced state
# ---------------------------------------------------------------------------------------------


class Basis(NamedTuple):
    """Per vector: v = offset + p target + q e. `target` is the free part of v* (zero on clamped
    coordinates), `e` the unit vector ⊥ it that completes span{target, v(0)} on the free
    coordinates, `offset` the clamped part of v* (zero elsewhere), and `clamped` its norm² for a
    partially clamped vector, else None."""

    target: Vectors
    e: Vectors
    offset: Vectors
    clamped: tuple


def _orthogonal_unit(t: np.ndarray) -> np.ndarray:
    """Some unit vector orthogonal to t (zero if the space is one-dimensional)."""
    for j in range(t.shape[0]):
        u = np.zeros_like(t)
        u[j] = 1.0
        u -= (u @ t) / (t @ t) * t
        if np.linalg.norm(u) > 1e-8:
            return u / np.linalg.norm(u)
    return np.zeros_like(t)


def reduce(draw: Draw, clamped=(0, 0, 0, 0)):
    """Reduced coordinates of a draw whose vector i has its first `clamped[i]` coordinates held at
    the target (`toymodel.clamp.counts`): (p0 (4,), q0 (4,), s (4,), Basis).

    Free vectors are p v* + q e; a wholly clamped one is (p, q) = (1, 0) with s = |v*|² (its
    update is masked); a partially clamped one is reduced on its free coordinates, with s the
    norm² of the target's free part and `Basis.clamped` the norm² of its clamped part."""
    p0, q0, s, ts, es, offsets, norms = [], [], [], [], [], [], []
    for name, v, t, k in zip("abcd", draw.init, draw.target, clamped):
        v, t = np.asarray(v, np.float64), np.asarray(t, np.float64)
        partial = 0 < k < t.shape[0]
        free = np.arange(t.shape[0]) >= (k if partial else 0)
        tf, vf = np.where(free, t, 0.0), np.where(free, v, 0.0)
        ss = float(tf @ tf)
        if partial and ss == 0:
            raise ValueError(f"the target of {name} is zero on its free coordinates: clamp all of {name} or fewer coordinates")
        whole = k == t.shape[0]
        p = 1.0 if whole else float(vf @ tf) / ss
        r = np.zeros_like(t) if whole else vf - p * tf
        q = float(np.linalg.norm(r))
        if q > 0:
            e = r / q
        else:
            e = np.zeros_like(t)
            e[free] = _orthogonal_unit(tf[free])
        offset = t - tf
        p0.append(p), q0.append(q), s.append(ss), ts.append(tf), es.append(e), offsets.append(offset)
        norms.append(float(offset @ offset) if partial else None)
    basis = Basis(*(Vectors(*(jnp.asarray(x) for x in xs)) for xs in (ts, es, offsets)), tuple(norms))
    return np.array(p0), np.array(q0), np.array(s), basis


def expand(p, q, basis: Basis) -> Vectors:
    """Full vectors v = offset + p target + q e from a reduced state p (4,), q (4,)."""
    return Vectors(*(basis.offset[i] + p[i] * basis.target[i] + q[i] * basis.e[i] for i in range(4)))
