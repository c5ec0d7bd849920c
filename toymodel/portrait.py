"""Phase portraits in the plane of the two mechanism strengths (m1 = ICL, m2 = CIWL).

Two exact pieces of dynamics share the plane:
- the *clamped* flow: with the shared layer at its target (b = b*, c = c*, the paper's grafting
  analogue) and a, d aligned with their targets (q = 0, an invariant set), the state is exactly
  (p_a, p_d) = (m1, m2) and gradient flow is a 2-d system: its vector field is drawn as streamlines;
- the *free* flow: full gradient flow (diffrax) from several random draws, projected onto
  (m1, m2): the routes training actually takes, with b and c learning alongside.
Fixed points of the free dynamics (`toymodel.analysis`) are marked by type.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from . import analysis, reduced
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


@float64
def compute_portrait(params: LossParams, *, dims=(20, 20, 20, 160), seeds=(7, 8, 9, 10, 11), time=16000.0,
                     grid=41, lo=-0.1, hi=1.15) -> Portrait:
    """The clamped-flow field on a grid, free-flow trajectories from `seeds`, and fixed points."""
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
    trajectories = [(seed, m1_t, m2_t) for seed, (m1_t, m2_t) in zip(seeds, _free_flows(params, seeds, dims, time))]
    return Portrait(params, m1, m2, u, v, trajectories, analysis.fixed_points(params, s, dims))


_SAVES = 400


@jax.jit
def _flows(p0, q0, s, coeffs, ts):
    """Free gradient flow from several states at once (vmapped diffrax): strengths (n, len(ts)) x 2."""

    def one(p, q, ss, c):
        const = reduced.Constants(ss, c)
        ones = jnp.ones(4)
        stats, _, _ = flow_solve(REDUCED, (p, q), const, (ones, ones), ts, rtol=1e-8, atol=1e-10)
        x = stats[:, 4:8]
        m1 = x[:, 0] * x[:, 1] * x[:, 2] / (ss[0] * ss[1] * ss[2])
        m2 = x[:, 3] * x[:, 1] * x[:, 2] / (ss[3] * ss[1] * ss[2])
        return m1, m2

    return jax.vmap(one)(p0, q0, s, coeffs)


def _free_flows(params: LossParams, seeds, dims, time):
    states = [reduced.reduce(paper_draw(seed, dims))[:3] for seed in seeds]
    p0, q0, s = (jnp.asarray(np.array([st[i] for st in states])) for i in range(3))
    coeffs = jnp.stack([reduced.constants(ss, dims, params).coeffs for ss in np.asarray(s)])
    ts = jnp.linspace(0.0, float(time), _SAVES)
    m1, m2 = _flows(p0, q0, s, coeffs, ts)
    return list(zip(np.asarray(m1), np.asarray(m2)))
