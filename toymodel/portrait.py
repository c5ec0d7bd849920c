"""Phase portraits in the plane of the two mechanism strengths (m1 = ICL, m2 = CIWL).

Two exact pieces of dynamics share the plane:
- the *clamped* flow: with the shared layer at its target (b = b*, c = c*, the paper's grafting
  analogue) and a, d aligned with their targets (q = 0, an invariant set), the state is exactly
  (p_a, p_d) = (m1, m2) and gradient flow is a 2-d system: its vector field is drawn as streamlines;
- the *free* flow: full gradient flow (diffrax) from several random draws, projected onto
  (m1, m2): the routes training actually takes, with b and c learning alongside. With a clamp spec
  (`toymodel.clamp`, e.g. ("b:10", "c:10")) these flows are of the clamped model (exact reduction).
Fixed points of the free, unclamped dynamics (`toymodel.analysis`) are marked by type.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import analysis, reduced
from . import clamp as clamp_mod
from .draws import paper_draw
from .dynamics import REDUCED, flow_solve
from .loss import LossParams
from .precision import float64


@dataclass
class Portrait:
    params: LossParams
    m1: np.ndarray  # (G,) grid
    m2: np.ndarray  # (G,)
    u: np.ndarray  # (G, G) clamped flow dm1/dt, indexed [m2, m1]
    v: np.ndarray  # (G, G) dm2/dt
    trajectories: list  # [(seed, m1(t), m2(t))]
    fixed_points: list  # analysis.fixed_points output
    clamp: tuple = ()  # the clamp spec of the trajectories


@float64
def compute_portrait(params: LossParams, *, dims=(20, 20, 20, 160), seeds=(7, 8, 9, 10, 11), time=16000.0,
                     grid=41, lo=-0.1, hi=1.15, clamp=()) -> Portrait:
    """The clamped-flow field on a grid, flow trajectories from `seeds` (under the clamp spec
    `clamp`), and fixed points. Raises ValueError if `clamp` does not fit `dims`."""
    counts = clamp_mod.counts(clamp, dims)
    draw = paper_draw(seeds[0], dims)
    _, _, s, _ = reduced.reduce(draw)
    const = reduced.constants(s, dims, params)
    m1 = np.linspace(lo, hi, grid)
    m2 = np.linspace(lo, hi, grid)
    g1, g2 = np.meshgrid(m1, m2)  # [m2, m1]

    @jax.jit
    def clamped(a, d):
        fp, _ = reduced.field((a, jnp.ones_like(a), jnp.ones_like(a), d), tuple(jnp.zeros_like(a) for _ in range(4)), const)
        return -fp[0], -fp[3]

    u, v = (np.asarray(x) for x in clamped(jnp.asarray(g1), jnp.asarray(g2)))
    flows = _free_flows(params, seeds, dims, time, counts)
    trajectories = [(seed, m1_t, m2_t) for seed, (m1_t, m2_t) in zip(seeds, flows)]
    return Portrait(params, m1, m2, u, v, trajectories, analysis.fixed_points(params, s, dims), tuple(clamp))


_SAVES = 400


@partial(jax.jit, static_argnames=("whole", "partly"))
def _flows(p0, q0, s, sc, coeffs, ts, whole, partly):
    """Gradient flow from several states at once (vmapped diffrax): strengths (n, len(ts)) x 2.
    Per state: p0, q0, s, sc (4,) as `reduced.reduce` gives them (sc: clamped parts' norms²);
    `whole`, `partly` (static): which vectors are wholly or partially clamped."""
    free = jnp.asarray([0.0 if w else 1.0 for w in whole])

    def one(p, q, ss, cc, c):
        const = reduced.Constants(ss, c, tuple(cc[i] if partly[i] else None for i in range(4)))
        stats, _, _ = flow_solve(REDUCED, (p, q), const, (free, free), ts, rtol=1e-8, atol=1e-10)
        x, _ = reduced.invariants(stats[:, 4:8].T, stats[:, 8:12].T, const)
        total = ss + cc
        m1 = x[0] * x[1] * x[2] / (total[0] * total[1] * total[2])
        m2 = x[3] * x[1] * x[2] / (total[3] * total[1] * total[2])
        return m1, m2

    return jax.vmap(one)(p0, q0, s, sc, coeffs)


def _free_flows(params: LossParams, seeds, dims, time, clamped):
    reductions = [reduced.reduce(paper_draw(seed, dims), clamped) for seed in seeds]
    p0, q0, s = (jnp.asarray(np.array([r[i] for r in reductions])) for i in range(3))
    sc = jnp.asarray(np.array([[c or 0.0 for c in r[3].clamped] for r in reductions]))
    coeffs = jnp.stack([reduced.constants(ss, dims, params).coeffs for ss in np.asarray(s)])
    ts = jnp.linspace(0.0, float(time), _SAVES)
    whole = tuple(k == n for k, n in zip(clamped, dims))
    partly = tuple(0 < k < n for k, n in zip(clamped, dims))
    m1, m2 = _flows(p0, q0, s, sc, coeffs, ts, whole=whole, partly=partly)
    return list(zip(np.asarray(m1), np.asarray(m2)))
