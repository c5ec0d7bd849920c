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
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import sympy as sp

from .draws import Draw
from .loss import VECTOR_NAMES, LossParams, Vectors

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
    """|v_i*⊗v_j*⊗v_k* − v_i⊗v_j⊗v_k|² in the cancellation-free form (module docstring)."""
    head = (1 - sp.Mul(*(P[i] for i in factors))) ** 2 * sp.Mul(*(S[i] for i in factors))
    rest = 0
    for mask in itertools.product((0, 1), repeat=len(factors)):
        if any(mask):
            rest += sp.Mul(*(Q[i] ** 2 if m else P[i] ** 2 * S[i] for i, m in zip(factors, mask)))
    return head + rest


def residual_sq_invariant(factors) -> sp.Expr:
    """The same quantity from the invariants: Π s_i − 2 Π x_i + Π y_i."""
    return sp.Mul(*(S[i] for i in factors)) - 2 * sp.Mul(*(_x(i) for i in factors)) + sp.Mul(*(_y(i) for i in factors))


ELL1, ELL2 = sp.symbols("ell_1 ell_2", real=True)  # stand for the values of L1 and L2
XS = sp.symbols("X_a X_b X_c X_d", real=True)  # stand for x = p s (= v·v*)
YS = sp.symbols("Y_a Y_b Y_c Y_d", real=True)  # stand for y = p² s + q² (= |v|²)


@dataclass(frozen=True)
class Derivation:
    """Symbolic reduced model.

    `l1`, `l2`, `competition`, `loss` are functions of (p, q, s, k, alpha, mu) in the
    cancellation-free form. `field_p[v] = (1/s_v) ∂L/∂p_v` and `field_q[v] = ∂L/∂q_v` (so gradient
    descent is p −= lr·field_p, q −= lr·field_q) are written with symbols standing for shared
    values: ELL1, ELL2 for L1 and L2 (the product rule makes the field linear in them) and XS, YS
    for the invariants; each is computed once per step and shared by all eight components.
    """

    l1: sp.Expr
    l2: sp.Expr
    competition: sp.Expr
    loss: sp.Expr
    field_p: tuple
    field_q: tuple


@functools.cache
def derive() -> Derivation:
    """Build the reduced loss and its vector field with sympy (cached; about a second)."""
    l1 = K1 / 2 * residual_sq((A, B, C))
    l2 = K2 / 2 * residual_sq((D, B, C))
    comp = KC / 2 * _y(A) * _y(D)
    loss = (l1 + MU1) * (l2 + MU2) + ALPHA * comp
    # The field by the chain rule through the invariants X = p s, Y = p² s + q²:
    #   (1/s_v) ∂/∂p_v = ∂/∂X_v + 2 p_v ∂/∂Y_v,   ∂/∂q_v = 2 q_v ∂/∂Y_v,
    # applied to L = (ELL1 + mu1)(ELL2 + mu2) + alpha C with ELL1, ELL2 standing for L1, L2.
    inv1 = K1 / 2 * (S[A] * S[B] * S[C] - 2 * XS[A] * XS[B] * XS[C] + YS[A] * YS[B] * YS[C])
    inv2 = K2 / 2 * (S[D] * S[B] * S[C] - 2 * XS[D] * XS[B] * XS[C] + YS[D] * YS[B] * YS[C])
    inv_c = KC / 2 * YS[A] * YS[D]

    def chain(expr, i, var):
        if var == "p":
            return sp.diff(expr, XS[i]) + 2 * P[i] * sp.diff(expr, YS[i])
        return 2 * Q[i] * sp.diff(expr, YS[i])

    def component(i, var):
        return (ELL2 + MU2) * chain(inv1, i, var) + (ELL1 + MU1) * chain(inv2, i, var) + ALPHA * chain(inv_c, i, var)

    field_p = tuple(sp.factor_terms(component(i, "p")) for i in range(4))
    field_q = tuple(sp.factor_terms(component(i, "q")) for i in range(4))
    return Derivation(l1, l2, comp, loss, field_p, field_q)


def check_derivation() -> bool:
    """True if (1) the cancellation-free residuals equal the invariant form identically, and
    (2) the structured field, with L1 and L2 substituted, equals (1/s)∂L/∂p and ∂L/∂q of the loss."""
    if not all(sp.expand(residual_sq(f) - residual_sq_invariant(f)) == 0 for f in ((A, B, C), (D, B, C))):
        return False
    der = derive()
    subs = {ELL1: der.l1, ELL2: der.l2} | {XS[i]: _x(i) for i in range(4)} | {YS[i]: _y(i) for i in range(4)}
    for i in range(4):
        if sp.expand(der.field_p[i].subs(subs) - sp.diff(der.loss, P[i]) / S[i]) != 0:
            return False
        if sp.expand(der.field_q[i].subs(subs) - sp.diff(der.loss, Q[i])) != 0:
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
    field = sp.lambdify((*_ARGS, *XS, *YS, ELL1, ELL2), [*der.field_p, *der.field_q], modules="jax", cse=True)
    return terms, field


class Constants(NamedTuple):
    """Everything the reduced dynamics needs besides the state: s (4,), and (k1, k2, kc, alpha, mu1, mu2)."""

    s: jnp.ndarray
    coeffs: jnp.ndarray


def constants(s, dims, params: LossParams) -> Constants:
    """Constants for target norms² `s` (4,), dimensions `dims` and loss hyperparameters."""
    n_a, n_b, n_c, n_d = dims
    if params.aggregate == "mean":
        k = (1.0 / (n_a * n_b * n_c), 1.0 / (n_d * n_b * n_c), 1.0 / (n_a * n_d))
    else:
        k = (1.0, 1.0, 1.0)
    coeffs = jnp.asarray([*k, params.alpha, params.mu1, params.mu2], jnp.float64)
    return Constants(jnp.asarray(s, jnp.float64), coeffs)


def _args(p, q, const: Constants):
    s, c = const.s, const.coeffs
    return (*(p[..., i] for i in range(4)), *(q[..., i] for i in range(4)), *(s[..., i] for i in range(4)),
            *(c[..., i] for i in range(6)))


def loss_terms(p, q, const: Constants):
    """(loss, l1, l2, competition) at reduced state p (…, 4), q (…, 4)."""
    terms, _ = _compiled()
    args = _args(p, q, const)
    l1, l2, comp = terms(*args)
    alpha, mu1, mu2 = args[-3:]
    return (l1 + mu1) * (l2 + mu2) + alpha * comp, l1, l2, comp


def field(p, q, const: Constants):
    """The vector field (F_p, F_q), each (…, 4): gradient descent is p −= lr F_p, q −= lr F_q."""
    terms, f = _compiled()
    args = _args(p, q, const)
    l1, l2, _ = terms(*args)
    x, y = invariants(p, q, const.s)
    out = f(*args, *(x[..., i] for i in range(4)), *(y[..., i] for i in range(4)), l1, l2)
    return jnp.stack(out[:4], axis=-1), jnp.stack(out[4:], axis=-1)


def invariants(p, q, s):
    """x = v·v* = p s and y = |v|² = p² s + q², each (…, 4)."""
    return p * s, p**2 * s + q**2


# ---------------------------------------------------------------------------------------------
# between full vectors and the reduced state
# ---------------------------------------------------------------------------------------------


class Basis(NamedTuple):
    """Per vector: its target v* and the unit vector e ⊥ v* that complete span{v*, v(0)}."""

    target: Vectors
    e: Vectors


def _orthogonal_unit(t: np.ndarray) -> np.ndarray:
    """Some unit vector orthogonal to t (zero if the space is one-dimensional)."""
    for j in range(t.shape[0]):
        u = np.zeros_like(t)
        u[j] = 1.0
        u -= (u @ t) / (t @ t) * t
        if np.linalg.norm(u) > 1e-8:
            return u / np.linalg.norm(u)
    return np.zeros_like(t)


def reduce(draw: Draw):
    """Reduced coordinates of a draw: (p0 (4,), q0 (4,), s (4,), Basis)."""
    p0, q0, s, es = [], [], [], []
    for v, t in zip(draw.init, draw.target):
        v, t = np.asarray(v, np.float64), np.asarray(t, np.float64)
        ss = float(t @ t)
        p = float(v @ t) / ss
        r = v - p * t
        q = float(np.linalg.norm(r))
        e = r / q if q > 0 else _orthogonal_unit(t)
        p0.append(p), q0.append(q), s.append(ss), es.append(e)
    basis = Basis(draw.target, Vectors(*(jnp.asarray(e) for e in es)))
    return np.array(p0), np.array(q0), np.array(s), basis


def expand(p, q, basis: Basis) -> Vectors:
    """Full vectors v = p v* + q e from a reduced state p (4,), q (4,)."""
    return Vectors(*(p[i] * basis.target[i] + q[i] * basis.e[i] for i in range(4)))

