"""The toy model with a speed ratio, compiled once per draw: its loss curves for many parameter sets
in one vmapped call (`simulate_batch`), its loss-threshold outcome (`toy_outcome`), and its outcome
classes over an (alpha, mu1) grid at a fit (`phase_grid`).

The speed ratio `nd_ratio` = effective n_d / n_a (the paper's draw, arXiv:2503.05631: 160 / 20 = 8).
With the mean aggregate the dimensions enter the reduced dynamics (`toymodel.reduced`) only as
rates: in the normalised coordinates every loss value is O(1) whatever n_v, and the update of
vector v is proportional to 1 / n_v, so a larger n_d makes mechanism 2 slower by n_d / n_a. The fit
moves that rate: d's gradient-descent step is multiplied by rho = n_d / (n_a * nd_ratio), all else
unchanged (rho = 1 at the draw's own dims). This is gradient descent on a draw whose d has
dimension n_a * nd_ratio with the same normalised overlaps (`tests/test_toy_fit.py` checks it); the
initial overlap of d stays the draw's. Scaling k2 alone is not a speed ratio: it is a change of
tau, mu2, alpha and A2 in the gradient-flow limit, so it cannot be identified.
"""

from __future__ import annotations

import functools
import time
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from toymodel import kernel, reduced
from toymodel.draws import PAPER_DIMS, PAPER_SEED, paper_draw
from toymodel.loss import aggregation
from toymodel.metrics import reference_losses
from toymodel.outcomes import LEARNED, OUTCOMES, classify
from toymodel.precision import float64

__all__ = ["Problem", "problem", "simulate_batch", "toy_outcome", "phase_grid", "TOY_RULE"]

TOY_RULE = (f"toymodel.outcomes: relative loss r = L / L_ref, learned when r <= {LEARNED}; transient_icl = ICL (L1) "
            "learned at some step and not at the last step")


class Problem(NamedTuple):
    """One draw's compiled toy curves and reference losses (`problem`)."""

    single: Callable  # (theta, steps, every) -> ((l1, l2) rows, l1 min, its step), one parameter set
    batch: Callable  # the same, vmapped over parameter sets (theta: 4 arrays (n,))
    l1_ref: float
    l2_ref: float
    rho_scale: float  # n_d / n_a of the draw: rho = rho_scale / nd_ratio


@functools.cache
def problem(seed: int, dims: tuple, lr: float) -> Problem:
    """The compiled toy curves of one draw (cached)."""
    draw = paper_draw(seed, dims)
    p0, q0, s, _ = reduced.reduce(draw)
    k = aggregation(dims, "mean").k
    l1_ref, l2_ref = reference_losses(s, dims, "mean")
    rho_scale = dims[3] / dims[0]

    def lane(theta, steps: int, every: int):
        """One parameter set theta = (alpha, mu1, mu2, nd_ratio): ((l1, l2) every `every` steps from 0
        to `steps` inclusive, l1 minimum over every step, its step), by `toymodel.kernel.solve` with
        d's step scaled by rho. The state is two (4,) arrays and the draw's constants are compiled in:
        XLA then fuses a single lane's loop body (about 50 ns a step on one core)."""
        alpha, mu1, mu2, nd_ratio = theta
        const = reduced.Constants(jnp.asarray(s), jnp.stack([jnp.asarray(k[0]), jnp.asarray(k[1]),
                                                             jnp.asarray(k[2]), alpha, mu1, mu2]))
        one_ = jnp.ones_like(alpha)
        rate = lr * jnp.stack([one_, one_, one_, rho_scale / nd_ratio])
        step = kernel.gd_step(const, rate)
        records, carry = kernel.solve(step, lambda st: jnp.stack(reduced.loss_terms(st[0], st[1], const)[:3]),
                                      (jnp.asarray(p0) * one_, jnp.asarray(q0) * one_), -jnp.inf,
                                      steps=steps, every=every)
        return (records[:, 1], records[:, 2]), carry.fold.l1_min, carry.fold.l1_min_step

    batch = jax.jit(jax.vmap(lane, in_axes=(0, None, None)), static_argnums=(1, 2))
    single = jax.jit(lane, static_argnums=(1, 2))
    return Problem(single, batch, float(l1_ref), float(l2_ref), rho_scale)


@float64
def simulate_batch(theta: np.ndarray, steps: int, every: int = 1, *, seed: int = PAPER_SEED, dims=PAPER_DIMS,
                   lr: float = 1.0, chunk: int = 256):
    """Toy losses for many parameter sets in one vmapped call per chunk.

    `theta` (n, 4): rows (alpha, mu1, mu2, nd_ratio). Returns (l1 (n, R), l2 (n, R), l1_min (n,),
    l1_min_step (n,)) with rows at steps 0, every, ..., steps (`every` must divide `steps`); the
    minimum is over every step. Chunks of `chunk` lanes (the last one padded) share one compilation.
    """
    if steps % every:
        raise ValueError(f"every ({every}) must divide steps ({steps})")
    prob = problem(int(seed), tuple(int(d) for d in dims), float(lr))
    theta = np.asarray(theta, np.float64).reshape(-1, 4)
    n = len(theta)
    if n == 1:  # the single-lane kernel: a fused loop body, far faster than a batch of one
        (l1, l2), lmin, tmin = prob.single(tuple(jnp.asarray(v) for v in theta[0]), steps, every)
        return np.asarray(l1)[None], np.asarray(l2)[None], np.asarray(lmin)[None], np.asarray(tmin)[None]
    size = min(chunk, n)
    outs = []
    for lo in range(0, n, size):
        part = theta[lo:lo + size]
        pad = np.concatenate([part, np.repeat(part[-1:], size - len(part), 0)])
        (l1, l2), lmin, tmin = prob.batch(tuple(jnp.asarray(pad[:, j]) for j in range(4)), steps, every)
        outs.append(tuple(np.asarray(x)[:len(part)] for x in (l1, l2, lmin, tmin)))
    return tuple(np.concatenate([o[i] for o in outs]) for i in range(4))


def toy_outcome(l1: np.ndarray, l2: np.ndarray, l1_ref: float, l2_ref: float) -> dict:
    """The toy's own outcome class over a trajectory (`toymodel.outcomes.classify`: losses relative to
    their reference levels, learned at <= LEARNED), with the ICL minimum and the final losses."""
    finite = bool(np.all(np.isfinite(l1)) and np.all(np.isfinite(l2)))
    i_min = int(np.argmin(np.where(np.isfinite(l1), l1, np.inf)))
    outcome = OUTCOMES[int(classify(l1[i_min], l1[-1], l2[-1], l1_ref, l2_ref))] if finite else "diverged"
    return {"outcome": outcome, "transient_icl": outcome == "transient_icl", "rule": TOY_RULE,
            "l1_min": float(l1[i_min]), "l1_min_step": i_min, "l1_final": float(l1[-1]), "l2_final": float(l2[-1]),
            "l1_ref": l1_ref, "l2_ref": l2_ref, "r1_min": float(l1[i_min] / l1_ref), "r1_final": float(l1[-1] / l1_ref),
            "r2_final": float(l2[-1] / l2_ref)}


@float64
def phase_grid(result, n: int = 40) -> dict:
    """Outcome classes over an (alpha, mu1) grid at a fit's (`compare.fit.FitResult`) mu2, nd_ratio, draw and own
    step count; the grid spans [0, max(0.5, 1.6 x fitted)] on each axis (n x n points)."""
    p, cfg = result.params, result.config
    a_max = max(0.5, 1.6 * p["alpha"])
    m_max = max(0.5, 1.6 * p["mu1"])
    alphas, mu1s = np.linspace(0, a_max, n), np.linspace(0, m_max, n)
    grid = np.stack(np.meshgrid(alphas, mu1s, indexing="ij"), -1).reshape(-1, 2)
    theta = np.column_stack([grid, np.full(len(grid), p["mu2"]), np.full(len(grid), p["nd_ratio"])])
    steps = result.toy["steps"]
    t0 = time.perf_counter()
    l1, l2, lmin, _ = simulate_batch(theta, steps, steps, seed=cfg.seed, dims=cfg.dims, lr=cfg.lr, chunk=len(theta))
    prob = problem(cfg.seed, tuple(cfg.dims), float(cfg.lr))
    codes = np.asarray(classify(lmin, l1[:, -1], l2[:, -1], prob.l1_ref, prob.l2_ref))
    return {"alpha": alphas, "mu1": mu1s, "outcome": codes.reshape(n, n), "mu2": p["mu2"],
            "nd_ratio": p["nd_ratio"], "steps": steps, "wall_time_s": time.perf_counter() - t0}
