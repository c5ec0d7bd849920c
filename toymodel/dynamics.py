"""Training dynamics of the toy model: gradient descent, gradient flow, optax optimisers.

Two state spaces carry the same dynamics:
- `reduced` (default, the fast path): 8 scalars (p, q) per the exact reduction in
  `toymodel.reduced`; exact for gd, sgd, momentum and flow.
- `full`: the four vectors themselves, gradients by autodiff of `toymodel.loss` (the reference).
  Adam is per-coordinate, so it leaves span{v*, v(0)} and runs in full space only.

Methods:
- `gd`: plain gradient descent, v ← v − lr ∇L, as one jitted `lax.scan` (the paper's method);
- `sgd`, `momentum` (heavy ball, 0.9), `adam`: the optax optimisers of those names;
- `flow`: the gradient-flow ODE dv/dt = −∇L, solved with diffrax (Tsit5, adaptive steps), with
  time t = lr · step so that its `step` axis matches gradient descent's.

Clamping a vector fixes it to its target (p, q) = (1, 0) from step 0 on (the paper's grafting
analogue). Recorded rows are steps 0, every, 2·every, … and the last step. The minimum of L1, its
step and the number of steps with ICL learned are accumulated over *every* step inside the scan
(for `flow`: over the saved times). The first step with a non-finite loss is reported as divergence.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, NamedTuple

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import loss as loss_mod
from . import reduced
from .draws import Draw
from .loss import VECTOR_NAMES, LossParams, Vectors
from .metrics import columns, reference_losses
from .outcomes import LEARNED, outcome_name
from .precision import float64

METHODS = ("gd", "sgd", "momentum", "adam", "flow")
SPACES = ("auto", "reduced", "full")
MOMENTUM = 0.9


@dataclass(frozen=True)
class RunConfig:
    """How to train: method, learning rate, number of steps, recording interval, clamped vectors."""

    method: str = "gd"
    lr: float = 1.0
    steps: int = 16000
    every: int = 1
    clamp: tuple[str, ...] = ()
    space: str = "auto"
    rtol: float = 1e-10  # flow only
    atol: float = 1e-12  # flow only

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.space not in SPACES:
            raise ValueError(f"space must be one of {SPACES}, got {self.space!r}")
        if self.method == "adam" and self.space == "reduced":
            raise ValueError("adam is per-coordinate and leaves span{v*, v(0)}: it needs space 'full'")
        if not set(self.clamp) <= set(VECTOR_NAMES):
            raise ValueError(f"clamp names must be among {VECTOR_NAMES}, got {self.clamp}")
        if self.steps < 1 or self.every < 1 or not self.lr > 0:
            raise ValueError("steps and every must be >= 1 and lr > 0")

    @property
    def resolved_space(self) -> str:
        if self.space != "auto":
            return self.space
        return "full" if self.method == "adam" else "reduced"


@dataclass
class Trajectory:
    """A simulated trajectory: recorded rows plus summaries accumulated over every step."""

    steps: np.ndarray  # (R,) step of each recorded row
    columns: dict[str, np.ndarray]  # name -> (R,), names in toymodel.metrics.COLUMNS
    l1_min: float
    l1_min_step: int
    icl_steps: int  # number of steps with L1 <= LEARNED * l1_ref
    l1_ref: float  # L1 with a⊗b⊗c = 0 (scale for relative losses)
    l2_ref: float
    outcome: str
    diverged_at: int | None  # first step with a non-finite loss, or None
    solver: dict = field(default_factory=dict)
    final_state: dict = field(default_factory=dict)  # reduced (p, q) or full vectors at the end

    def final(self, name: str) -> float:
        return float(self.columns[name][-1])


# ---------------------------------------------------------------------------------------------
# the two state spaces: gradient and tracked statistics of a state
# ---------------------------------------------------------------------------------------------


class System(NamedTuple):
    """A state space: `grad(state, consts)` (a state-shaped pytree) and `stats(state, consts)`,
    the (12,) vector [loss, l1, l2, competition, x_a..x_d, y_a..y_d]."""

    grad: Callable
    stats: Callable


def _reduced_grad(state, const):
    fp, fq = reduced.field(state[0], state[1], const)
    return jnp.stack(fp), jnp.stack(fq)


def _reduced_stats(state, const):
    p, q = state
    terms = reduced.loss_terms(p, q, const)
    p, q, s = (jnp.stack(v) if isinstance(v, tuple) else v for v in (p, q, const.s))
    # x and y as whole (4,) arrays: stacking 12 scalars instead costs a kernel each, every step
    return jnp.concatenate([jnp.stack(terms), p * s, p * p * s + q * q])


def _full_grad(aggregate):
    def grad(v, const):
        target, coeffs = const
        params = _params(coeffs, aggregate)
        return jax.grad(loss_mod.total_loss)(v, target, params)

    return grad


def _full_stats(aggregate):
    def stats(v, const):
        target, coeffs = const
        terms = loss_mod.loss_terms(v, target, _params(coeffs, aggregate))
        x = jnp.stack([jnp.dot(vi, ti) for vi, ti in zip(v, target)])
        y = jnp.stack([jnp.dot(vi, vi) for vi in v])
        return jnp.concatenate([jnp.stack([terms[k] for k in ("loss", "l1", "l2", "competition")]), x, y])

    return stats


def _params(coeffs, aggregate):
    return LossParams(coeffs[0], coeffs[1], coeffs[2], aggregate)


REDUCED = System(_reduced_grad, _reduced_stats)
FULL = {agg: System(_full_grad(agg), _full_stats(agg)) for agg in loss_mod.AGGREGATES}


# ---------------------------------------------------------------------------------------------
# the scan: step, record, accumulate
# ---------------------------------------------------------------------------------------------


class Accumulators(NamedTuple):
    """Summaries over every step: L1 minimum and its step, steps with ICL learned, first bad step."""

    l1_min: jnp.ndarray
    l1_min_step: jnp.ndarray
    icl_steps: jnp.ndarray
    first_bad: jnp.ndarray  # -1 while every loss so far is finite


def _accumulate(acc: Accumulators, stats, t, l1_threshold) -> Accumulators:
    l1 = stats[1]
    better = l1 < acc.l1_min
    bad = ~jnp.isfinite(stats[0]) & (acc.first_bad < 0)
    return Accumulators(
        jnp.where(better, l1, acc.l1_min),
        jnp.where(better, t, acc.l1_min_step),
        acc.icl_steps + (l1 <= l1_threshold),
        jnp.where(bad, t, acc.first_bad),
    )


def summarise(records: np.ndarray, l1_threshold: float) -> Accumulators:
    """`Accumulators` of a trajectory recorded at every step (numpy; equal to folding `_accumulate`)."""
    loss, l1 = records[:, 0], records[:, 1]
    finite = np.isfinite(loss)
    l1_clean = np.where(np.isnan(l1), np.inf, l1)
    i_min = int(np.argmin(l1_clean))
    return Accumulators(float(l1_clean[i_min]), i_min, int(np.sum(l1 <= l1_threshold)),
                        -1 if finite.all() else int(np.argmin(finite)))


def run_scan(step_fn, stats_fn, state0, l1_threshold, *, steps: int, every: int, unroll: int = 1,
             observe=lambda state: state):
    """Iterate `state ← step_fn(state)` `steps` times, recording `stats_fn(observe(state))`.

    Returns (records (R, 12), final_state, accumulators). Rows are the states at steps
    0, every, …, (steps // every)·every, and `steps` itself when `every` does not divide it.
    `observe(state)` is the part of the state `stats_fn` reads (e.g. without an optimiser's state).
    With `every == 1` every step is a row and the accumulators are None (`summarise` the rows);
    otherwise they are folded inside the loop over every step (`Accumulators`).
    Pure: call it inside `jax.jit` (with `steps`, `every` static), and `jax.vmap` it freely.
    """
    if every == 1:
        # steps + 1 updates, each emitting the statistics of the state before it; the carry keeps
        # that state too, so after the loop it holds the state at `steps` (the last update is unused)
        def update(carry, _):
            state, _ = carry
            return (step_fn(state), state), stats_fn(observe(state))

        (_, final), records = jax.lax.scan(update, (state0, state0), None, length=steps + 1, unroll=unroll)
        return records, final, None

    acc0 = Accumulators(jnp.asarray(jnp.inf), jnp.asarray(0), jnp.asarray(0), jnp.asarray(-1))

    def one(carry, _):
        state, t, acc = carry
        acc = _accumulate(acc, stats_fn(observe(state)), t, l1_threshold)
        return (step_fn(state), t + 1, acc), None

    def block(carry, _):
        record = stats_fn(observe(carry[0]))
        carry, _ = jax.lax.scan(one, carry, None, length=every, unroll=unroll)
        return carry, record

    n_blocks, rest = divmod(steps, every)
    carry, records = jax.lax.scan(block, (state0, jnp.asarray(0), acc0), None, length=n_blocks)
    if rest:
        records = jnp.concatenate([records, stats_fn(observe(carry[0]))[None]])
        carry, _ = jax.lax.scan(one, carry, None, length=rest, unroll=unroll)
    state, t, acc = carry
    final = stats_fn(observe(state))
    acc = _accumulate(acc, final, t, l1_threshold)
    return jnp.concatenate([records, final[None]]), state, acc


def record_steps(steps: int, every: int) -> np.ndarray:
    """The steps at which `run_scan` records rows."""
    rows = np.arange(0, steps + 1, every)
    return rows if rows[-1] == steps else np.append(rows, steps)


def _masked(tree, mask):
    return jax.tree_util.tree_map(lambda g, m: g * m, tree, mask)


def gd_scan(system: System, state0, *, consts, lr, mask, l1_threshold, steps, every=1, unroll=1):
    """Plain gradient descent (the paper's method) as one scan; see `run_scan`.

    Pure and traceable. Compile it with the constants closed over (as `simulate` does): XLA then
    folds the draw's norms and the loss coefficients into the loop body, 2.4x faster than
    passing them as arguments.
    """

    def step(state):
        g = _masked(system.grad(state, consts), mask)
        return jax.tree_util.tree_map(lambda s, gi: s - lr * gi, state, g)

    return run_scan(step, lambda st: system.stats(st, consts), state0, l1_threshold, steps=steps, every=every, unroll=unroll)


def make_optimizer(method: str, lr) -> optax.GradientTransformation:
    """The optax optimiser for a method name: sgd, momentum (heavy ball, 0.9) or adam."""
    if method == "sgd":
        return optax.sgd(lr)
    if method == "momentum":
        return optax.sgd(lr, momentum=MOMENTUM)
    if method == "adam":
        return optax.adam(lr)
    raise ValueError(f"no optax optimiser for method {method!r}")


def optax_scan(system: System, method: str, state0, *, consts, lr, mask, l1_threshold, steps, every=1, unroll=1):
    """An optax optimiser in one scan (pure, like `gd_scan`); its state rides along with the model's."""
    opt = make_optimizer(method, lr)

    def step(carry):
        state, opt_state = carry
        g = _masked(system.grad(state, consts), mask)
        updates, opt_state = opt.update(g, opt_state, state)
        return optax.apply_updates(state, updates), opt_state

    records, (state, _), acc = run_scan(
        step, lambda st: system.stats(st, consts), (state0, opt.init(state0)), l1_threshold,
        steps=steps, every=every, unroll=unroll, observe=lambda c: c[0],
    )
    return records, state, acc


def flow_solve(system: System, state0, consts, mask, ts, *, rtol, atol, max_steps=1_000_000):
    """Gradient flow dv/dt = −∇L with diffrax (Tsit5, PID step control), saved at times `ts`.

    Returns (stats (len(ts), 12), final state, diffrax Solution).
    """
    term = diffrax.ODETerm(lambda t, y, args: jax.tree_util.tree_map(lambda g: -g, _masked(system.grad(y, consts), mask)))
    sol = diffrax.diffeqsolve(
        term, diffrax.Tsit5(), t0=0.0, t1=ts[-1], dt0=None, y0=state0,
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=max_steps, throw=False,
    )
    stats = jax.vmap(lambda y: system.stats(y, consts))(sol.ys)
    final = jax.tree_util.tree_map(lambda y: y[-1], sol.ys)
    return stats, final, sol


# ---------------------------------------------------------------------------------------------
# the public entry point
# ---------------------------------------------------------------------------------------------


@float64
def simulate(draw: Draw, params: LossParams = LossParams(), config: RunConfig = RunConfig()) -> Trajectory:
    """Train the toy model from `draw` under loss `params` as `config` says; float64 throughout."""
    space = config.resolved_space
    p0, q0, s, basis = reduced.reduce(draw)
    free = np.array([0.0 if v in config.clamp else 1.0 for v in VECTOR_NAMES])
    p0 = np.where(free > 0, p0, 1.0)
    q0 = np.where(free > 0, q0, 0.0)
    l1_ref, l2_ref = reference_losses(s, draw.dims, params.aggregate)
    l1_threshold = LEARNED * l1_ref

    if space == "reduced":
        system = REDUCED
        state0 = (jnp.asarray(p0), jnp.asarray(q0))  # (4,) arrays: one fused loop body
        consts = reduced.constants(s, draw.dims, params)
        mask = (jnp.asarray(free), jnp.asarray(free))
    else:
        system = FULL[params.aggregate]
        state0 = reduced.expand(p0, q0, basis)  # == draw.init, with clamped vectors at their targets
        consts = (draw.target, jnp.asarray([params.alpha, params.mu1, params.mu2], jnp.float64))
        mask = Vectors(*(jnp.asarray(f) for f in free))

    rows = record_steps(config.steps, config.every)
    start = time.perf_counter()
    if config.method == "flow":
        ts = jnp.asarray(rows * config.lr, jnp.float64)
        stats, final, sol = flow_solve(system, state0, consts, mask, ts, rtol=config.rtol, atol=config.atol)
        stats = np.asarray(stats)
        l1 = stats[:, 1]
        finite = np.isfinite(stats[:, 0])
        bad = np.flatnonzero(~finite)
        first_bad = int(rows[bad[0]]) if bad.size else -1
        i_min = int(np.nanargmin(np.where(finite, l1, np.nan))) if finite.any() else 0
        l1_min, l1_min_step = float(l1[i_min]), int(rows[i_min])
        icl_steps = int(np.sum(l1[finite] <= l1_threshold)) * config.every
        solver = {
            "solver": "diffrax.Tsit5", "rtol": config.rtol, "atol": config.atol,
            "status": "successful" if sol.result == diffrax.RESULTS.successful else str(sol.result),
            "num_steps": int(sol.stats["num_steps"]),
            "num_accepted_steps": int(sol.stats["num_accepted_steps"]),
            "num_rejected_steps": int(sol.stats["num_rejected_steps"]),
        }
    else:
        if config.method == "gd":
            run = partial(gd_scan, system, consts=consts, lr=config.lr, mask=mask)
        else:
            run = partial(optax_scan, system, config.method, consts=consts, lr=config.lr, mask=mask)
        compiled = jax.jit(lambda s0: run(s0, l1_threshold=l1_threshold, steps=config.steps, every=config.every))
        records, final, acc = compiled(state0)
        stats = np.asarray(records)
        acc = summarise(stats, l1_threshold) if acc is None else acc
        first_bad = int(acc.first_bad)
        l1_min, l1_min_step, icl_steps = float(acc.l1_min), int(acc.l1_min_step), int(acc.icl_steps)
        solver = {"solver": f"{config.method} scan", "status": "successful" if first_bad < 0 else "diverged"}
    solver["space"] = space
    solver["wall_time_s"] = time.perf_counter() - start

    diverged_at = first_bad if first_bad >= 0 else None
    if diverged_at is not None:  # keep the trajectory up to the divergence
        keep = rows < diverged_at
        rows, stats = rows[keep], stats[keep]
    cols = columns(stats, s)
    if space == "reduced":
        final_state = {"p": np.asarray(final[0]).tolist(), "q": np.asarray(final[1]).tolist()}
    else:
        final_state = {n: np.asarray(v).tolist() for n, v in zip(VECTOR_NAMES, final)}
    if diverged_at is None:
        outcome = outcome_name(l1_min / l1_ref, cols["l1"][-1] / l1_ref, cols["l2"][-1] / l2_ref)
    else:
        outcome = "diverged"
    return Trajectory(rows, cols, l1_min, l1_min_step, icl_steps, l1_ref, l2_ref, outcome, diverged_at, solver, final_state)
