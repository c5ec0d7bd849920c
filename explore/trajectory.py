"""`toymodel.dynamics.simulate`, compiled once per shape: the trajectory behind the page's curves.

`toymodel.dynamics.simulate` closes the loss coefficients and the learning rate over the jitted
loop (XLA folds them in), so every call compiles anew: ~0.17 s for the paper's 16,000 gd steps,
1.5 s for flow, on this machine. A slider needs less. Here the same loop of the library
(`dynamics.gd_scan`, `dynamics.optax_scan`, `dynamics.flow_solve`, reduced space) is compiled with
(alpha, mu1, mu2), lr, the draw's norms and the ICL threshold as *arguments*, so one compiled
program serves every value of them; it compiles again only when a shape changes (method, steps,
recording interval, which vectors are clamped). Its rows are turned into a
`toymodel.dynamics.Trajectory` exactly as `simulate` does (`toymodel.metrics.columns`,
`toymodel.outcomes.classify`). With the coefficients as
arguments XLA may round a few operations differently: the rows agree with `coop toy simulate`'s to
~1e-13 (tests/test_explore.py checks 1e-9 on gd, momentum, flow and clamps).

Reduced space only (exact for the page's methods gd, momentum and flow), no stopping loss.
"""

from __future__ import annotations

import time
from functools import partial

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from toymodel import clamp as clamp_mod
from toymodel import dynamics, kernel, reduced
from toymodel.draws import Draw
from toymodel.loss import LossParams
from toymodel.metrics import columns, reference_losses
from toymodel.outcomes import LEARNED, OUTCOMES, classify
from toymodel.precision import float64

__all__ = ["METHODS", "trajectory"]

METHODS = ("gd", "momentum", "flow")


@partial(jax.jit, static_argnames=("method", "steps", "every", "free", "rtol", "atol"))
def _run(state0, consts, lr, l1_threshold, *, method, steps, every, free, rtol, atol):
    """(stats rows, final state, (l1_min, l1_min_step, icl_steps, first_bad), solver statistics)."""
    mask = (jnp.asarray(free), jnp.asarray(free))
    system = dynamics.REDUCED
    if method == "flow":
        ts = jnp.asarray(dynamics.record_steps(steps, every), jnp.float64) * lr
        stats, states, sol = dynamics.flow_solve(system, state0, consts, mask, ts, rtol=rtol, atol=atol)
        acc = kernel.fold_rows(stats, l1_threshold)  # over the saved times: indices are rows
        final = jax.tree_util.tree_map(lambda y: y[-1], states)
        solver = (sol.result == diffrax.RESULTS.successful, sol.stats["num_steps"],
                  sol.stats["num_accepted_steps"], sol.stats["num_rejected_steps"])
        return stats, final, acc, solver
    if method == "gd":
        # dynamics.gd_scan's step with lr an argument: per-vector rates lr x (0 for a clamped vector)
        step = kernel.gd_step(consts, lr * jnp.asarray(free))
        records, carry = kernel.solve(step, lambda st: system.stats(st, consts, mask), state0, l1_threshold,
                                      steps=steps, every=every)
        return records, carry.state, carry.fold, ()
    records, final, acc = dynamics.optax_scan(system, method, state0, consts=consts, lr=lr, mask=mask,
                                              l1_threshold=l1_threshold, steps=steps, every=every)
    return records, final, acc, ()


@float64
def trajectory(draw: Draw, params: LossParams, config: dynamics.RunConfig) -> dynamics.Trajectory:
    """What `toymodel.dynamics.simulate(draw, params, config)` returns (rows to ~1e-13), from a program
    compiled once per (method, steps, every, clamp pattern). `config.method` in METHODS, reduced
    space, no stopping loss: ValueError otherwise."""
    if config.method not in METHODS or config.resolved_space != "reduced" or config.stop_at_loss is not None:
        raise ValueError(f"method must be one of {METHODS} in reduced space without a stopping loss")
    clamped = clamp_mod.counts(config.clamp, draw.dims)
    p0, q0, s, basis = reduced.reduce(draw, clamped)
    s_total = s + np.array([c or 0.0 for c in basis.clamped])
    l1_ref, l2_ref = reference_losses(s_total, draw.dims, params.aggregate)
    consts = reduced.constants(s, draw.dims, params, basis.clamped)
    free = tuple(0.0 if k == n else 1.0 for k, n in zip(clamped, draw.dims))
    rows = dynamics.record_steps(config.steps, config.every)

    start = time.perf_counter()
    stats, final, acc, solver_stats = _run(
        (jnp.asarray(p0), jnp.asarray(q0)), consts, jnp.asarray(config.lr, jnp.float64),
        jnp.asarray(LEARNED * l1_ref, jnp.float64), method=config.method, steps=config.steps, every=config.every,
        free=free, rtol=config.rtol, atol=config.atol)
    stats = np.asarray(stats)
    first_bad, l1_min, icl_steps = int(acc.first_bad), float(acc.l1_min), int(acc.icl_steps)
    if config.method == "flow":
        ok, n, accepted, rejected = (int(x) for x in solver_stats)
        first_bad = int(rows[first_bad]) if first_bad >= 0 else -1
        l1_min_step, icl_steps = int(rows[int(acc.l1_min_step)]), icl_steps * config.every
        solver = {"solver": "diffrax.Tsit5", "rtol": config.rtol, "atol": config.atol,
                  "status": "successful" if ok else "not successful", "num_steps": n,
                  "num_accepted_steps": accepted, "num_rejected_steps": rejected}
    else:
        l1_min_step = int(acc.l1_min_step)
        solver = {"solver": f"{config.method} scan", "status": "successful" if first_bad < 0 else "diverged"}
    solver["space"] = "reduced"
    solver["wall_time_s"] = time.perf_counter() - start

    diverged_at = first_bad if first_bad >= 0 else None
    if diverged_at is not None:  # keep the trajectory up to the divergence
        keep = rows < diverged_at
        rows, stats = rows[keep], stats[keep]
    mask = (np.asarray(free), np.asarray(free))
    cols = columns(stats[:, :4], s=s_total, **dynamics.REDUCED.tracked(stats, consts, mask))
    if diverged_at is None:
        outcome = OUTCOMES[classify(l1_min, cols["l1"][-1], cols["l2"][-1], l1_ref, l2_ref)]
    else:
        outcome = "diverged"
    final_state = {"p": np.asarray(final[0]).tolist(), "q": np.asarray(final[1]).tolist()}
    return dynamics.Trajectory(rows, cols, l1_min, l1_min_step, icl_steps, l1_ref, l2_ref, outcome, diverged_at,
                               solver, final_state)
