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

Clamping (`toymodel.clamp`) holds a whole vector, or its first K coordinates, at the target from
step 0 on (the paper's grafting analogue): a wholly clamped vector is (p, q) = (1, 0) with its
update masked; a partially clamped one is reduced on its free coordinates (exact, see
`toymodel.reduced`); in full space the clamped coordinates' gradient is masked.

Recorded rows are steps 0, every, 2·every, … and the last step. The minimum of L1, its step and
the number of steps with ICL learned are accumulated over *every* step inside the scan (for
`flow`: over the saved times). The first step with a non-finite loss is reported as divergence.
With `stop_at_loss` X the run ends at the first step whose loss is below X (for `flow`: the first
saved time): the state is frozen there, nothing after it is accumulated, and the trajectory's
last row is that step.
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

from . import clamp as clamp_mod
from . import loss as loss_mod
from . import kernel, reduced
from .draws import Draw
from .loss import VECTOR_NAMES, LossParams, Vectors
from .metrics import columns, reference_losses
from .outcomes import LEARNED, OUTCOMES, classify
from .precision import float64

METHODS = ("gd", "sgd", "momentum", "adam", "flow")
SPACES = ("auto", "reduced", "full")
MOMENTUM = 0.9


@dataclass(frozen=True)
class RunConfig:
    """How to train: method, learning rate, number of steps, recording interval, clamp spec
    (`toymodel.clamp`, e.g. ("b:10", "c")), state space, and an optional stopping loss."""

    method: str = "gd"
    lr: float = 1.0
    steps: int = 16000
    every: int = 1
    clamp: tuple[str, ...] = ()
    space: str = "auto"
    rtol: float = 1e-10  # flow only
    atol: float = 1e-12  # flow only
    stop_at_loss: float | None = None  # end at the first step whose loss is below this

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.space not in SPACES:
            raise ValueError(f"space must be one of {SPACES}, got {self.space!r}")
        if self.method == "adam" and self.space == "reduced":
            raise ValueError("adam is per-coordinate and leaves span{v*, v(0)}: it needs space 'full'")
        clamp_mod.parse(self.clamp)
        if self.steps < 1 or self.every < 1 or not self.lr > 0:
            raise ValueError("steps and every must be >= 1 and lr > 0")
        if self.stop_at_loss is not None and not self.stop_at_loss >= 0:
            raise ValueError(f"stop_at_loss must be a number >= 0 or None, got {self.stop_at_loss}")

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
    stopped_at: int | None = None  # the step whose loss fell below `stop_at_loss`, or None

    def final(self, name: str) -> float:
        return float(self.columns[name][-1])


# ---------------------------------------------------------------------------------------------
# the two state spaces: gradient and tracked statistics of a state
# ---------------------------------------------------------------------------------------------


class System(NamedTuple):
    """A state space: `grad(state, consts)` (a state-shaped pytree); `stats(state, consts, mask)`,
    the vector the loop records per step, whose first four entries are [loss, l1, l2, competition];
    and `tracked(records, consts, mask)`, the per-vector quantities of `metrics.columns` (x, y,
    grad2, dist2, perp2, each (R, 4)) from recorded rows (R, ·). `mask` is the update mask."""

    grad: Callable
    stats: Callable
    tracked: Callable


def _reduced_grad(state, const):
    fp, fq = reduced.field(state[0], state[1], const)
    return jnp.stack(fp), jnp.stack(fq)


def _reduced_stats(state, const, mask):
    """[loss, l1, l2, competition, p_a..p_d, q_a..q_d]: the state itself, so that the loop stays
    lean; everything else is exact from it (`_reduced_tracked`)."""
    p, q = state
    terms = reduced.loss_terms(p, q, const)
    p, q = (jnp.stack(v) if isinstance(v, tuple) else v for v in (p, q))
    return jnp.concatenate([jnp.stack(terms), p, q])


def _reduced_tracked(records, const, mask):
    """Exact per-vector quantities from recorded reduced states, cancellation-free: |v − v*|² =
    (1 − p)² s + q² (the clamped part is at the target), |v − (x/s)v*|² = Q² (`reduced.whole_coordinates`;
    q² unless partially clamped), |g|² = F_p² s + F_q² on the free coordinates (the metric of p)."""
    p, q = jnp.asarray(records[:, 4:8]).T, jnp.asarray(records[:, 8:12]).T
    s = const.s
    x, y = reduced.invariants(p, q, const)
    fp, fq = reduced.field(p, q, const)
    perp2 = [q[i] ** 2 if c is None else reduced.whole_coordinates(p[i], q[i], s[i], c)[1]
             for i, c in enumerate(const.clamped)]
    out = {
        "x": x, "y": y, "perp2": perp2,
        "grad2": [mask[0][i] * (fp[i] ** 2 * s[i] + fq[i] ** 2) for i in range(4)],
        "dist2": [(1 - p[i]) ** 2 * s[i] + q[i] ** 2 for i in range(4)],
    }
    return {k: np.stack([np.asarray(c) for c in v], axis=1) for k, v in out.items()}


def _full_grad(aggregate):
    def grad(v, const):
        target, coeffs = const
        params = _params(coeffs, aggregate)
        return jax.grad(loss_mod.total_loss)(v, target, params)

    return grad


def _full_stats(aggregate):
    def stats(v, const, mask):
        """[loss, l1, l2, competition, x (4), y (4), grad2 (4), dist2 (4), perp2 (4)] from the vectors."""
        target, coeffs = const
        terms = loss_mod.loss_terms(v, target, _params(coeffs, aggregate))
        g = _masked(_full_grad(aggregate)(v, const), mask)
        x = [jnp.dot(vi, ti) for vi, ti in zip(v, target)]
        perp = [vi - xi / jnp.dot(ti, ti) * ti for vi, ti, xi in zip(v, target, x)]
        per_vector = (x, [jnp.dot(vi, vi) for vi in v], [jnp.dot(gi, gi) for gi in g],
                      [jnp.sum((vi - ti) ** 2) for vi, ti in zip(v, target)], [jnp.dot(u, u) for u in perp])
        head = jnp.stack([terms[k] for k in ("loss", "l1", "l2", "competition")])
        return jnp.concatenate([head, *(jnp.stack(values) for values in per_vector)])

    return stats


def _full_tracked(records, const, mask):
    records = np.asarray(records)
    return {name: records[:, 4 + 4 * i: 8 + 4 * i] for i, name in enumerate(("x", "y", "grad2", "dist2", "perp2"))}


def _params(coeffs, aggregate):
    return LossParams(coeffs[0], coeffs[1], coeffs[2], aggregate)


REDUCED = System(_reduced_grad, _reduced_stats, _reduced_tracked)
FULL = {agg: System(_full_grad(agg), _full_stats(agg), _full_tracked) for agg in loss_mod.AGGREGATES}


# ---------------------------------------------------------------------------------------------
# the scan: the loop of `toymodel.kernel` with a gradient-descent or optax step
# ---------------------------------------------------------------------------------------------


def record_steps(steps: int, every: int) -> np.ndarray:
    """The steps at which `kernel.solve` records rows."""
    rows = np.arange(0, steps + 1, every)
    return rows if rows[-1] == steps else np.append(rows, steps)


def _masked(tree, mask):
    return jax.tree_util.tree_map(lambda g, m: g * m, tree, mask)


def gd_scan(system: System, state0, *, consts, lr, mask, l1_threshold, steps, every=1, unroll=1, stop=None):
    """Plain gradient descent (the paper's method) as one scan: (records (R, ·), final state, `kernel.Fold`).

    In reduced space the step is `kernel.gd_step` (the same as the sweep's and the fit's), with the
    vectors whose mask is 0 never updated (`mask` must then be concrete); in full space the
    gradient is masked. Pure and traceable. Compile it with the constants closed over (as
    `simulate` does): XLA then folds the draw's norms and the loss coefficients into the loop body,
    2.4x faster than passing them as arguments.
    """
    if system is REDUCED:
        step = kernel.gd_step(consts, tuple(None if m == 0 else lr for m in np.asarray(mask[0]).tolist()))
    else:
        def step(state):
            g = _masked(system.grad(state, consts), mask)
            return jax.tree_util.tree_map(lambda s, gi: s - lr * gi, state, g)

    records, carry = kernel.solve(step, lambda st: system.stats(st, consts, mask), state0, l1_threshold,
                                  steps=steps, every=every, stop=stop, unroll=unroll)
    return records, carry.state, carry.fold


def make_optimizer(method: str, lr) -> optax.GradientTransformation:
    """The optax optimiser for a method name: sgd, momentum (heavy ball, 0.9) or adam."""
    if method == "sgd":
        return optax.sgd(lr)
    if method == "momentum":
        return optax.sgd(lr, momentum=MOMENTUM)
    if method == "adam":
        return optax.adam(lr)
    raise ValueError(f"no optax optimiser for method {method!r}")


def optax_scan(system: System, method: str, state0, *, consts, lr, mask, l1_threshold, steps, every=1, unroll=1,
               stop=None):
    """An optax optimiser in one scan (pure, like `gd_scan`); its state rides along with the model's."""
    opt = make_optimizer(method, lr)

    def step(carry):
        state, opt_state = carry
        g = _masked(system.grad(state, consts), mask)
        updates, opt_state = opt.update(g, opt_state, state)
        return optax.apply_updates(state, updates), opt_state

    records, carry = kernel.solve(step, lambda c: system.stats(c[0], consts, mask), (state0, opt.init(state0)),
                                  l1_threshold, steps=steps, every=every, stop=stop, unroll=unroll)
    return records, carry.state[0], carry.fold


def flow_solve(system: System, state0, consts, mask, ts, *, rtol, atol, max_steps=1_000_000):
    """Gradient flow dv/dt = −∇L with diffrax (Tsit5, PID step control), saved at times `ts`.

    Returns (stats (len(ts), ·), the states at `ts`, diffrax Solution).
    """
    term = diffrax.ODETerm(lambda t, y, args: jax.tree_util.tree_map(lambda g: -g, _masked(system.grad(y, consts), mask)))
    sol = diffrax.diffeqsolve(
        term, diffrax.Tsit5(), t0=0.0, t1=ts[-1], dt0=None, y0=state0,
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=max_steps, throw=False,
    )
    stats = jax.vmap(lambda y: system.stats(y, consts, mask))(sol.ys)
    return stats, sol.ys, sol


# ---------------------------------------------------------------------------------------------
# the public entry point
# ---------------------------------------------------------------------------------------------


def _cut(rows, stats, step):
    """Rows up to `step`, ending with `step` itself: the stats there are those of the first row at or
    after it (the state is frozen from the stop on)."""
    i = int(np.searchsorted(rows, step))
    return np.append(rows[:i], step), np.concatenate([stats[:i], stats[i:i + 1]])


@float64
def simulate(draw: Draw, params: LossParams = LossParams(), config: RunConfig = RunConfig()) -> Trajectory:
    """Train the toy model from `draw` under loss `params` as `config` says; float64 throughout.
    Raises ValueError if the clamp spec does not fit the draw's dimensions."""
    space = config.resolved_space
    clamped = clamp_mod.counts(config.clamp, draw.dims)
    p0, q0, s, basis = reduced.reduce(draw, clamped)
    s_total = s + np.array([c or 0.0 for c in basis.clamped])
    l1_ref, l2_ref = reference_losses(s_total, draw.dims, params.aggregate)
    l1_threshold = LEARNED * l1_ref
    stop = config.stop_at_loss

    if space == "reduced":
        system = REDUCED
        state0 = (jnp.asarray(p0), jnp.asarray(q0))  # (4,) arrays: one fused loop body
        consts = reduced.constants(s, draw.dims, params, basis.clamped)
        free = jnp.asarray([0.0 if k == n else 1.0 for k, n in zip(clamped, draw.dims)])
        mask = (free, free)
    else:
        system = FULL[params.aggregate]
        state0 = Vectors(*map(jnp.asarray, clamp_mod.apply(draw.init, draw.target, clamped)))
        consts = (draw.target, jnp.asarray([params.alpha, params.mu1, params.mu2], jnp.float64))
        mask = Vectors(*map(jnp.asarray, clamp_mod.free_mask(draw.dims, clamped)))

    rows = record_steps(config.steps, config.every)
    start = time.perf_counter()
    if config.method == "flow":
        ts = jnp.asarray(rows * config.lr, jnp.float64)
        stats, states, sol = flow_solve(system, state0, consts, mask, ts, rtol=config.rtol, atol=config.atol)
        stats = np.asarray(stats)
        acc = kernel.fold_rows(stats, l1_threshold, stop)  # over the saved times: indices are rows
        bad_row, stop_row = int(acc.first_bad), int(acc.first_stop)
        final = jax.tree_util.tree_map(lambda y: y[stop_row if stop_row >= 0 else len(rows) - 1], states)
        first_bad = int(rows[bad_row]) if bad_row >= 0 else -1
        first_stop = int(rows[stop_row]) if stop_row >= 0 else -1
        l1_min, l1_min_step = float(acc.l1_min), int(rows[int(acc.l1_min_step)])
        icl_steps = int(acc.icl_steps) * config.every
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
        compiled = jax.jit(lambda s0: run(s0, l1_threshold=l1_threshold, steps=config.steps, every=config.every,
                                          stop=stop))
        records, final, acc = compiled(state0)
        stats = np.asarray(records)
        first_bad, first_stop = int(acc.first_bad), int(acc.first_stop)
        l1_min, l1_min_step, icl_steps = float(acc.l1_min), int(acc.l1_min_step), int(acc.icl_steps)
        solver = {"solver": f"{config.method} scan", "status": "successful" if first_bad < 0 else "diverged"}
    solver["space"] = space
    solver["wall_time_s"] = time.perf_counter() - start

    diverged_at = first_bad if first_bad >= 0 else None
    stopped_at = first_stop if first_stop >= 0 else None
    if diverged_at is not None:  # keep the trajectory up to the divergence
        keep = rows < diverged_at
        rows, stats = rows[keep], stats[keep]
    if stopped_at is not None:  # the trajectory ends at the stop
        rows, stats = _cut(rows, stats, stopped_at)
    cols = columns(stats[:, :4], s=s_total, **system.tracked(stats, consts, mask))
    if space == "reduced":
        final_state = {"p": np.asarray(final[0]).tolist(), "q": np.asarray(final[1]).tolist()}
    else:
        final_state = {n: np.asarray(v).tolist() for n, v in zip(VECTOR_NAMES, final)}
    if diverged_at is None:
        outcome = OUTCOMES[classify(l1_min, cols["l1"][-1], cols["l2"][-1], l1_ref, l2_ref)]
    else:
        outcome = "diverged"
    return Trajectory(rows, cols, l1_min, l1_min_step, icl_steps, l1_ref, l2_ref, outcome, diverged_at, solver,
                      final_state, stopped_at)
