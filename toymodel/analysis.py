"""Fixed points of the reduced dynamics and their stability.

At a fixed point q G = 0 and p G = H (see `toymodel.reduced`). G > 0 for non-degenerate states,
so q = 0: every vector is aligned with its target, v = p v*. With u = p_b p_c and the mechanism
strengths m1 = p_a u, m2 = p_d u (1 = learned), z = u², S = s_b s_c, the fixed-point equations
reduce (derived with sympy in `reduced_equations`) to three:

    (i)   W1 S z (1 − m1) = alpha k_c s_d m1 m2² / z
    (ii)  W2 S z (1 − m2) = alpha k_c s_a m2 m1² / z
    (iii) W1 s_a m1 (1 − m1) + W2 s_d m2 (1 − m2) = 0,

with W1 = k1 (L2 + mu2), W2 = k2 (L1 + mu1), L1 = k1/2 s_a S (1 − m1)², L2 = k2/2 s_d S (1 − m2)².
The split of u between b and c is free: b → σb, c → c/σ leaves L unchanged (an exact symmetry,
whose zero eigenvalue is removed before judging stability).

Closed forms (checked with sympy in `closed_form_checks`):
- the origin class: u = 0 (b or c zero) with a = d = 0: a saddle;
- `ciwl` (m1, m2) = (0, 1) is a fixed point iff mu2 = 0 (or alpha = 0 with m1 free): for mu2 > 0,
  W1 = k1 mu2 > 0 pulls a towards a* (H_a > 0), so CIWL alone is not an end state;
- `icl` (1, 0) iff mu1 = 0, symmetrically;
- `both` (1, 1) iff alpha = 0.
Other (mixed) fixed points are found numerically (scipy root from a grid of starts). With alpha,
mu1, mu2 all > 0 there may be no finite stable fixed point at all: the loss then decreases towards
mu1·mu2 along m1 = m2 = 1 with z → ∞ (a and d shrink while the shared b, c grow, which removes
the competition), and long runs drift that way.

Stability: the Jacobian J = ∂F/∂(p, q) of the field F (gradient descent follows −F) at the fixed
point, by autodiff; its eigenvalues are real (J is similar to the metric-weighted Hessian). A fixed
point is stable when no eigenvalue is negative beyond tolerance, after removing the symmetry mode.
Zero eigenvalues left over are flat directions (reported as `marginal` directions).
"""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp
from scipy import optimize

from . import reduced
from .loss import LossParams, aggregation
from .precision import float64

M1, M2, Z = sp.symbols("m_1 m_2 z", real=True)
EIG_TOL = 1e-10


@functools.cache
def reduced_equations():
    """The fixed-point equations in (m1, m2, z), from the sympy shrink/pull factors with q = 0."""
    der = reduced.derive()
    P, Q, S = reduced.P, reduced.Q, reduced.S
    u = sp.sqrt(Z)
    subs = {Q[i]: 0 for i in range(4)}
    # a representative of the symmetry family: p_b = p_c = sqrt(u) in units where s enters X, Y
    subs |= {P[0]: M1 / u, P[3]: M2 / u, P[1]: sp.sqrt(u), P[2]: sp.sqrt(u)}
    shared = {reduced.W1: reduced.K1 * (der.l2 + reduced.MU2), reduced.W2: reduced.K2 * (der.l1 + reduced.MU1)}
    shared |= {reduced.XS[i]: P[i] * S[i] for i in range(4)} | {reduced.YS[i]: P[i] ** 2 * S[i] for i in range(4)}
    eqs = []
    for i in (0, 3, 1):  # a, d, b (c repeats b)
        g = der.shrink[i].subs(shared)
        h = der.pull[i].subs(shared)
        eqs.append(sp.simplify((P[i] * g - h).subs(subs)))
    return eqs


@functools.cache
def _equations_numeric():
    args = (M1, M2, Z, *reduced.S, reduced.K1, reduced.K2, reduced.KC, reduced.ALPHA, reduced.MU1, reduced.MU2)
    return sp.lambdify(args, reduced_equations(), modules="numpy")


def closed_form_checks() -> dict[str, bool]:
    """Sympy checks of the closed-form fixed points named in the module docstring."""
    eqs = reduced_equations()
    alpha, mu1, mu2 = reduced.ALPHA, reduced.MU1, reduced.MU2

    def vanishes(point, extra):
        return all(sp.simplify(e.subs(point).subs(extra)) == 0 for e in eqs)

    return {
        "ciwl (0,1) with mu2 = 0": vanishes({M1: 0, M2: 1}, {mu2: 0}),
        "ciwl (0,1) fails with mu2 > 0, alpha > 0": not vanishes({M1: 0, M2: 1}, {}),
        "icl (1,0) with mu1 = 0": vanishes({M1: 1, M2: 0}, {mu1: 0}),
        "icl (1,0) fails with mu1 > 0": not vanishes({M1: 1, M2: 0}, {}),
        "both (1,1) with alpha = 0": vanishes({M1: 1, M2: 1}, {alpha: 0}),
        "both (1,1) fails with alpha > 0": not vanishes({M1: 1, M2: 1}, {}),
    }


def _state(m1, m2, z, s):
    """A representative reduced state (p, q) of the fixed point (m1, m2, z): q = 0, p_b = p_c."""
    u = np.sqrt(z)
    p = np.array([m1 / u if u > 0 else 0.0, np.sqrt(u), np.sqrt(u), m2 / u if u > 0 else 0.0])
    return p, np.zeros(4)


@float64
def classify(p, q, s, dims, params: LossParams) -> dict:
    """Loss terms, Jacobian eigenvalues and stability of the reduced state (p, q)."""
    const = reduced.constants(s, dims, params)

    def flat_field(zv):
        fp, fq = reduced.field(tuple(zv[:4]), tuple(zv[4:]), const)
        return jnp.stack([*fp, *fq])

    zv = jnp.asarray(np.concatenate([p, q]))
    residual = float(jnp.max(jnp.abs(flat_field(zv))))
    jac = np.asarray(jax.jacfwd(flat_field)(zv))
    # J = M^-1 H with M = diag(s, 1): symmetrise as M^1/2 J M^-1/2, whose eigenvalues are J's
    root = np.sqrt(np.concatenate([s, np.ones(4)]))
    sym = (root[:, None] * jac / root[None, :])
    sym = 0.5 * (sym + sym.T)
    vals, vecs = np.linalg.eigh(sym)
    # the exact symmetry b -> σb, c -> c/σ: tangent (0, p_b, -p_c, 0 | 0, q_b, -q_c, 0), in M^1/2 units
    tangent = np.array([0, p[1], -p[2], 0, 0, q[1], -q[2], 0]) * root
    sym_index = None
    if np.linalg.norm(tangent) > 0:
        overlap = np.abs(vecs.T @ (tangent / np.linalg.norm(tangent)))
        sym_index = int(np.argmax(overlap))
    scale = max(1.0, float(np.max(np.abs(vals))))
    others = [v for i, v in enumerate(vals) if i != sym_index]
    negative = sum(v < -EIG_TOL * scale for v in others)
    zero = sum(abs(v) <= EIG_TOL * scale for v in others)
    terms = reduced.loss_terms(tuple(p), tuple(q), const)
    return {
        "loss": float(terms[0]), "l1": float(terms[1]), "l2": float(terms[2]), "competition": float(terms[3]),
        "eigenvalues": [float(v) for v in vals],
        "symmetry_eigenvalue": float(vals[sym_index]) if sym_index is not None else None,
        "negative_directions": int(negative),
        "marginal_directions": int(zero),
        "stable": bool(negative == 0),
        "type": "stable" if negative == 0 and zero == 0 else ("marginally stable" if negative == 0 else
                                                            ("saddle" if negative < len(others) else "unstable")),
        "residual": residual,
    }


@float64
def fixed_points(params: LossParams, s, dims) -> list[dict]:
    """All fixed points found: the origin, closed forms and numerical roots of (i)-(iii), classified.

    Roots with the same (m1, m2) but different z form a one-parameter family (the scale of the
    shared layer is free there, e.g. at the CIWL point with a = 0): they are reported once, at the
    z closest to 1, with the range of z found.
    """
    k = aggregation(dims, params.aggregate).k
    f = _equations_numeric()
    args = (*s, *k, params.alpha, params.mu1, params.mu2)
    roots: dict[tuple, dict] = {}

    def add(m1, m2, z, origin):
        key = (round(m1, 6) + 0.0, round(m2, 6) + 0.0)
        entry = roots.setdefault(key, {"m1": float(m1), "m2": float(m2), "zs": [], "found_by": origin})
        entry["zs"].append(float(z))
        if origin.startswith("closed"):
            entry["found_by"] = origin

    if params.mu2 == 0:
        add(0.0, 1.0, 1.0, "closed form (ciwl)")
    if params.mu1 == 0:
        add(1.0, 0.0, 1.0, "closed form (icl)")
    if params.alpha == 0:
        add(1.0, 1.0, 1.0, "closed form (both)")

    def eqs(x):
        m1, m2, logz = x
        return np.array(f(m1, m2, np.exp(logz), *args), dtype=float)

    for m1, m2, logz in itertools.product(np.linspace(-0.2, 1.2, 8), np.linspace(-0.2, 1.2, 8), (-1.0, 0.0, 1.0)):
        with np.errstate(all="ignore"):
            sol = optimize.root(eqs, [m1, m2, logz], method="hybr", options={"xtol": 1e-13})
        if sol.success and abs(sol.x[2]) < 30 and np.max(np.abs(eqs(sol.x))) < 1e-12:
            add(sol.x[0], sol.x[1], float(np.exp(sol.x[2])), "numerical (scipy root)")

    out = [{"m1": 0.0, "m2": 0.0, "z": 0.0, "found_by": "closed form (origin)", "p": [0.0] * 4, "q": [0.0] * 4}
           | _degenerate(classify(np.zeros(4), np.zeros(4), s, dims, params))]
    # alpha = 0 with a zero offset: a whole line of fixed points (once one mechanism is learned and
    # its offset is 0, nothing acts on the other's private vector): report the line once
    lines = []
    if params.alpha == 0 and params.mu2 == 0:
        lines.append(("m2", "line m2 = 1 (any m1): with L2 = 0 = mu2 and alpha = 0 nothing moves a"))
    if params.alpha == 0 and params.mu1 == 0:
        lines.append(("m1", "line m1 = 1 (any m2): with L1 = 0 = mu1 and alpha = 0 nothing moves d"))
    for axis, text in lines:
        roots = {key: e for key, e in roots.items() if abs(e[axis] - 1) > 1e-6 or (e["m1"] == 1 and e["m2"] == 1)}
        roots[(axis, "line")] = {"m1": 1.0 if axis == "m1" else 0.5, "m2": 1.0 if axis == "m2" else 0.5,
                                 "zs": [1.0], "found_by": "closed form (" + text + ")", "line": axis}
    for entry in sorted(roots.values(), key=lambda d: (d["m1"], d["m2"])):
        zs = np.array(entry.pop("zs"))
        z = float(zs[np.argmin(np.abs(np.log(zs)))])
        p, q = _state(entry["m1"], entry["m2"], z, np.asarray(s))
        info = classify(p, q, np.asarray(s), dims, params)
        if info["residual"] > 1e-9:
            continue
        family = {"z_range_found": [float(zs.min()), float(zs.max())]} if zs.max() > zs.min() * (1 + 1e-6) else {}
        out.append(entry | {"z": z, "p": p.tolist(), "q": q.tolist()} | family | info)
    return out


def _degenerate(info: dict) -> dict:
    """The origin: every eigenvalue is 0 (the loss is flat to second order there). It is not a
    minimum: along v = eps·v* for a, b, c, L1 falls as (1 − eps³)², so it is unstable."""
    return info | {"stable": False, "type": "degenerate saddle (higher order)"}
