"""The training loop of the toy model, written once: a step function and a fold over the run.

In the style of a diffrax solver loop, three pieces:
- a *step* `state -> state`: `gd_step` is exact reduced gradient descent (`toymodel.reduced`,
  the state (p, q) two sequences of 4); `toymodel.dynamics` passes optax and full-space steps too;
- the *fold* (`Fold`, `fold`): over every step of a run, the L1 minimum and its step, the steps
  with ICL learned (L1 <= threshold), the first step with a non-finite loss and the first step
  whose loss is below a stopping loss;
- the loops: `advance` (n steps of fold-then-step, one `lax.scan`), `solve` (rows recorded every
  `every` steps on top of it: `coop toy simulate`, the fit's toy curves) and `settle` (blocks of
  `advance` with an early exit once the state has stopped moving: the sweep's lanes).

`coop toy simulate`, `coop toy sweep` and the toy-vs-transformer fit (`compare.fit`) all run these
functions, so the dynamics and the folded quantities live here only. All are pure and traceable:
call them inside `jax.jit` (lengths and flags static) and `jax.vmap` them freely. The state may be
two (4,) arrays (one fused loop body: fastest for a single trajectory) or two tuples of 4 scalars
(structure of arrays under `jax.vmap`: each state scalar one contiguous vector over lanes).

What the sweep's loop compiles to (XLA CPU, jax 0.10.2, read from the optimized HLO of the
sweep's round kernel). XLA's CPU backend fuses elementwise work into single-output loop fusions
only: written plainly, the 249-step inner scan of a `settle` block was a while loop of 13 fusions
and 10 copies per step (one loop fusion per state scalar and per folded quantity, each
recomputing the L1/L2 terms it needs, plus copies of the carried vectors for the in-place
updates). About 78% of the time was in those fusions, 12% in the copies, 9% in dispatch (`perf`).
Materialising the shared terms (through a reduction, or carried across steps) and a single (8, N)
state array did not help. What does: a *reduce* may have many outputs, and XLA fuses the
elementwise producers of all of them into it. `one_fusion` routes each step's outputs through one
variadic reduce that returns them unchanged, so the whole step is one fusion with the shared terms
computed once per lane, and with the scan unrolled by 2 (`UNROLL`) the loop body is two such
fusions and no copies. `settle` (the sweep) runs this way: ~3x fewer seconds per lane-step, and
the whole 256 x 256 benchmark under 2 s warm (`benchmarks/bench_sweep.py`). XLA rounds a few
operations differently in the fused form, so the sweep's losses differ from the unfused loop's in
the last bits (on the benchmark grid: L1 minima within 1e-8 relative, final losses within 1e-14
absolute; every step count and outcome the same); `solve` (`coop toy simulate`, the fit) keeps
the unfused loop, whose numbers the recorded results were made with. Each fusion is one vectorised float64 pass over the lanes, 8-wide
AVX-512 where the CPU has it and XLA is asked to prefer 512-bit vectors
(`--xla_cpu_prefer_vector_width=512`, which `coop toy sweep` sets: `toymodel.commands.cpu_devices`;
the same numbers bit for bit, since the body is elementwise over lanes and the only reduction, the
largest state change, is a maximum). Around the loop: the layout (above), the draw's constants
compiled in, both cores (one JAX device each), and early exit with compaction of the running lanes
(`toymodel.sweep`). Compacting into fixed tiles of 1,024 lanes (one compiled round kernel instead
of one per batch size) measured slower warm on an idle machine, so it was not adopted.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from . import reduced

__all__ = ["Fold", "Carry", "Settling", "initial_fold", "fold", "fold_rows", "gd_step", "start", "advance", "solve", "settle",
           "one_fusion", "BLOCK", "UNROLL", "SETTLED"]

BLOCK = 250  # steps between the convergence checks of `settle`
UNROLL = 2  # steps per iteration of `settle`'s loop: halves the copies of the carried vectors
SETTLED = 1e-15  # settled: no state scalar moved more than this in a step (and the motion is shrinking)


class Fold(NamedTuple):
    """The quantities folded over every step (scalars, or (N,) under vmap)."""

    l1_min: jnp.ndarray  # smallest L1 so far (inf at the start; a nan L1 never counts)
    l1_min_step: jnp.ndarray  # its step (the first one on ties)
    icl_steps: jnp.ndarray  # steps with L1 <= the ICL threshold
    first_bad: jnp.ndarray  # first step with a non-finite loss, -1 while none
    first_stop: jnp.ndarray  # first step whose loss is below the stopping loss, -1 while none (or no stop)


def initial_fold() -> Fold:
    return Fold(jnp.asarray(jnp.inf), jnp.asarray(0), jnp.asarray(0), jnp.asarray(-1), jnp.asarray(-1))


def fold(acc: Fold, terms, t, l1_threshold, stop: float | None = None, finite: bool = True) -> Fold:
    """Fold step t's loss terms (terms[0] = loss, terms[1] = L1) into `acc`.

    `finite=False` skips the finiteness check (the sweep checks the state at block ends instead).
    With a stopping loss, steps after the first one below it are not folded."""
    l1 = terms[1]
    better = l1 < acc.l1_min
    new = acc._replace(
        l1_min=jnp.where(better, l1, acc.l1_min),
        l1_min_step=jnp.where(better, t, acc.l1_min_step),
        icl_steps=acc.icl_steps + (l1 <= l1_threshold),
    )
    if finite:
        new = new._replace(first_bad=jnp.where(~jnp.isfinite(terms[0]) & (acc.first_bad < 0), t, acc.first_bad))
    if stop is None:
        return new
    live = acc.first_stop < 0
    new = jax.tree_util.tree_map(lambda n, o: jnp.where(live, n, o), new, acc)
    return new._replace(first_stop=jnp.where(live & (terms[0] < stop), t, acc.first_stop))


def fold_rows(rows, l1_threshold, stop: float | None = None) -> Fold:
    """`fold` over recorded rows (R, ·) (rows[:, 0] loss, rows[:, 1] L1), steps = row indices: the
    summaries of a trajectory recorded only at some times (gradient flow's saved times)."""
    rows = jnp.asarray(rows)

    def body(acc, row_t):
        row, t = row_t
        return fold(acc, row, t, l1_threshold, stop), None

    return jax.lax.scan(body, initial_fold(), (rows, jnp.arange(rows.shape[0])))[0]


# ---------------------------------------------------------------------------------------------
# the step
# ---------------------------------------------------------------------------------------------


def _descend(x, f, rate):
    """x_i − rate_i f_i per vector; rate_i None keeps x_i (a wholly clamped vector). Same layout as x:
    a tuple of scalars, or a (4,) array updated as one vector (x − rate f, a frozen vector's rate 0;
    one vector operation, as XLA fuses it best)."""
    if isinstance(x, tuple):
        return tuple(x[i] if r is None else x[i] - r * f[i] for i, r in enumerate(rate))
    if not isinstance(rate, tuple):
        return x - rate * jnp.stack(f)
    lr = {r for r in rate if r is not None}
    if len(lr) == 1 and not isinstance(next(iter(lr)), jax.Array):  # one lr: x − lr (f · mask)
        mask = jnp.asarray([0.0 if r is None else 1.0 for r in rate])
        return x - lr.pop() * (jnp.stack(f) * mask)
    return x - jnp.stack([0.0 if r is None else r for r in rate]) * jnp.stack(f)


def gd_step(const: reduced.Constants, rate) -> Callable:
    """Exact reduced gradient descent, p ← p − rate F_p, q ← q − rate F_q (`reduced.field`).

    `rate`: 4 per-vector step sizes (lr, or lr times a speed factor), None for a vector that is
    wholly clamped (static: it is never updated); or a (4,) array of them for a (4,)-array state."""

    def step(state):
        p, q = state
        fp, fq = reduced.field(p, q, const)
        return _descend(p, fp, rate), _descend(q, fq, rate)

    return step


# ---------------------------------------------------------------------------------------------
# the loops
# ---------------------------------------------------------------------------------------------


class Carry(NamedTuple):
    """What the loop carries: the state, the step t of that state, and the fold over steps < t."""

    state: object
    t: jnp.ndarray
    fold: Fold


def start(state0) -> Carry:
    return Carry(state0, jnp.asarray(0), initial_fold())


def _hold(stopped, state, new):
    """`new`, or `state` again once `stopped` (the run has ended: the state is frozen)."""
    return jax.tree_util.tree_map(lambda old, fresh: jnp.where(stopped, old, fresh), state, new)


def _lowest(dtype):
    return -jnp.inf if jnp.issubdtype(dtype, jnp.floating) else jnp.iinfo(dtype).min


def one_fusion(tree):
    """`tree` (leaves of one shape) unchanged, bit for bit, computed as the outputs of one variadic reduce.

    XLA's CPU backend fuses elementwise work into single-output loop fusions only, so a loop step
    with 11 outputs (8 state scalars, the folded quantities) compiles to 11 fusions, each
    recomputing the L1/L2 terms its output needs. A reduce may have many outputs, and XLA fuses
    their elementwise producers into it: routing every output through one reduce makes the whole
    step one fusion in which the shared terms are computed once per lane. Each leaf x becomes the
    maximum over [x, lowest] with init lowest (−inf, or the integer minimum), which is x exactly
    (NaN included). `settle` (the sweep) runs its steps this way: 3x fewer seconds per lane-step
    (`benchmarks/bench_sweep.py`)."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    leaves = [jnp.asarray(x) for x in leaves]
    padded = [jnp.stack([x, jnp.full_like(x, _lowest(x.dtype))]) for x in leaves]
    inits = [jnp.asarray(_lowest(x.dtype), x.dtype) for x in leaves]
    out = jax.lax.reduce(padded, inits, lambda a, b: tuple(jnp.maximum(x, y) for x, y in zip(a, b)), (0,))
    return jax.tree_util.tree_unflatten(treedef, list(out))


def advance(step: Callable, observe: Callable, carry: Carry, length: int, l1_threshold, *,
            stop: float | None = None, finite: bool = True, unroll: int = 1, fused: bool = False) -> Carry:
    """`length` iterations of: fold `observe(state)` (terms[0] loss, terms[1] L1) at step t, then
    state ← step(state); with `stop`, the state freezes once a loss fell below it. `fused`: each
    iteration's new state and changed folded quantities go through `one_fusion` (one fusion per
    step; the same arithmetic, but XLA rounds some of it differently: last-bit differences)."""
    changing = ("l1_min", "l1_min_step", "icl_steps") + ("first_bad",) * finite + ("first_stop",) * (stop is not None)

    def one(c: Carry, _=None):
        acc = fold(c.fold, observe(c.state), c.t, l1_threshold, stop, finite)
        new = step(c.state)
        if stop is not None:
            new = _hold(acc.first_stop >= 0, c.state, new)
        t = c.t + 1
        if fused:
            new, t, values = one_fusion((new, t, tuple(getattr(acc, k) for k in changing)))
            acc = acc._replace(**dict(zip(changing, values)))
        return Carry(new, t, acc), None

    if length == 0:
        return carry
    if length == 1:
        return one(carry)[0]
    return jax.lax.scan(one, carry, None, length=length, unroll=unroll)[0]


def solve(step: Callable, observe: Callable, state0, l1_threshold, *, steps: int, every: int = 1,
          stop: float | None = None, unroll: int = 1):
    """Run `steps` steps from `state0`, recording `observe(state)` at steps 0, every, 2·every, …,
    and at `steps` itself; fold every step 0..steps (see `advance`).

    Returns (records (R, ·), final Carry). With `stop`, rows after the stop repeat the frozen state.
    """

    if every == 1:
        # every state is a row: steps + 1 iterations, each recording the state before its step
        # (the last step is not used), then the fold over the rows. Folding inside this loop would
        # give the same fold but change how XLA fuses (and so rounds, with FMA) the state update.
        def each(carry, _):
            state, _ = carry
            row = observe(state)
            new = step(state)
            if stop is not None:  # a state below the stopping loss stays put, so it stays below
                new = _hold(row[0] < stop, state, new)
            return (new, state), row

        (_, final), records = jax.lax.scan(each, (state0, state0), None, length=steps + 1, unroll=unroll)
        return records, Carry(final, jnp.asarray(steps), fold_rows(records, l1_threshold, stop))

    def block(c, _):
        return advance(step, observe, c, every, l1_threshold, stop=stop, unroll=unroll), observe(c.state)

    n_blocks, rest = divmod(steps, every)
    carry, records = jax.lax.scan(block, start(state0), None, length=n_blocks)
    if rest:
        records = jnp.concatenate([records, observe(carry.state)[None]])
        carry = advance(step, observe, carry, rest, l1_threshold, stop=stop, unroll=unroll)
    final = observe(carry.state)
    carry = carry._replace(fold=fold(carry.fold, final, carry.t, l1_threshold, stop))
    return jnp.concatenate([records, final[None]]), carry


def _flat(state):
    return jnp.stack([*state[0], *state[1]])


class Settling(NamedTuple):
    """`settle`'s carry: the loop's, the largest change of a state scalar in the last step of the
    last block (inf before the first), and whether the run is over (end, settled or diverged)."""

    carry: Carry
    moved: jnp.ndarray
    done: jnp.ndarray


def settle(step: Callable, observe: Callable, s: Settling, l1_threshold, *, steps: int, max_blocks: int) -> Settling:
    """Up to `max_blocks` blocks of BLOCK steps (fold without the finiteness check), each ending with
    the early-exit checks: the state is non-finite (`first_bad` = that step), or it has *settled*
    (its largest scalar change in the block's last step is <= SETTLED and smaller than at the
    previous check: a decaying, not a growing, motion), or step `steps` is reached. Tuple states."""

    def block(sn):
        s, n = sn
        c = advance(step, observe, s.carry, BLOCK - 1, l1_threshold, finite=False, unroll=UNROLL, fused=True)
        before = c.state
        c = advance(step, observe, c, 1, l1_threshold, finite=False, fused=True)
        bad = ~jnp.all(jnp.isfinite(_flat(c.state))) & (c.fold.first_bad < 0)
        c = c._replace(fold=c.fold._replace(first_bad=jnp.where(bad, c.t, c.fold.first_bad)))
        moved = jnp.max(jnp.abs(_flat(c.state) - _flat(before)))
        settled = (moved <= SETTLED) & (moved < s.moved)
        done = (c.t >= steps) | settled | (c.fold.first_bad >= 0)
        return Settling(c, moved, done), n + 1

    return jax.lax.while_loop(lambda sn: ~sn[0].done & (sn[1] < max_blocks), block, (s, 0))[0]
