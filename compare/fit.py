"""Fitting the toy model's loss curves to measured ones (a transformer run's ICL and CIWL evaluators).

The mapping
-----------
A run gives, at sequences seen s_i (i = 1..n), a curve of the ICL evaluator y1_i and one of the CIWL
evaluator y2_i. Which curves (`losses`):

- "error" (the default): the error rate, 1 - in-context accuracy. The toy's L1 and L2 measure how
  far each mechanism is from its target; what a mechanism's progress shows in the network is how
  often it picks the right one of the two labels it can see. The error rate is bounded like the
  toy's losses, is 0.5 at chance on both evaluators, and its evaluation noise is binomial
  (sqrt(p (1 - p) / n), at most 0.011 with the faithful preset's 2,000 sequences).
- "context": the in-context loss, the cross-entropy of the logits restricted to the two labels in
  the context (`transformer.evaluate`). It also measures confidence, and that is what the toy
  cannot follow: on the faithful preset's run both in-context losses *rise* above log 2 in the first
  0.7M sequences, while both accuracies are still at chance (the logits grow while CIWL creeps from
  0.50 to 0.61), and single confidently wrong sequences make it noisy (the ICL loss jumps between
  0.8 and 2.7 there). Measured on that run's first 3.5M sequences: R^2 0.60 / 0.81 (ICL / CIWL)
  with the in-context losses, 0.979 / 0.956 with the error rates, same rows, same free parameters.
- "full": the full cross-entropy over all K labels. Once the network answers from its weights it
  bets on the query's own label, which is neither of the ICL evaluator's labels 0 and 1, so this
  loss keeps growing after ICL has faded (~2.5x its early plateau on the cpu preset's run) although
  the ICL mechanism cannot get worse than chance: no image of the toy's L1, which returns to its
  reference level as ICL fades, can follow it.

The toy model with parameters (alpha, mu1, mu2, nd_ratio), trained by plain gradient
descent (lr 1, the paper's method) from a fixed draw (default: the paper's, seed 7, dims
20,20,20,160), gives L1(k), L2(k) at integer steps k. The fitted model of the measurements is

    icl_loss(s)  ~ A1 * L1(s / tau) + B1,        ciwl_loss(s) ~ A2 * L2(s / tau) + B2,

    A1, A2 >= 0;  tau = sequences per toy step;  toy step 0 (the draw's initial vectors) is s = 0;
    between integer steps the trajectory is linearly interpolated, L(k + f) = (1 - f) L(k) + f L(k+1).

Error-rate curves (a run's default) have a chance level, 0.5, and the maps are anchored there:
A_k = (0.5 - B_k) / L_k,ref, i.e. error_k = B_k + (0.5 - B_k) L_k / L_k,ref, so the toy's reference
loss (the mechanism absent, `toymodel.metrics.reference_losses`) is the evaluator at chance and B_k
in [0, 0.5] is the error left when the mechanism is complete. One map parameter per curve instead
of two; on the faithful preset's seed-0 run R^2 0.957 / 0.939 anchored against 0.954 / 0.948 with
free A_k (its free A1 came out 1.558 against the anchored 1.581). The anchor does not stop a fit
from placing a whole toy ICL emergence in a dip of a few hundredths: with B1 near 0.5 (0.467 on
seed 1, whose ICL never emerged) A1 is small again. A CSV's curves have no chance level: free
affine maps, A_k >= 0.

The probit link (`link="probit"`, error rates only)
--------------------------------------------------
The affine map says an evaluator's error falls in proportion to the toy's loss. A classifier does
not work that way: it errs on a sequence when its margin for the right label is negative, and the
margin grows with how much of the mechanism has been built. With the mechanism's strength
s = 1 - sqrt(L / L_ref) (exact when the learned tensor is parallel to the target: L = |T* - T|^2
and L_ref = |T*|^2 give T = s T*), a margin linear in s and Gaussian over sequences gives

    error_k = Phi(z_k * (1 - sqrt(L_k / L_k,ref))),    z_k = Phi^-1(B_k) < 0,

chance (0.5) at L_ref, B_k (the error at completion) at L = 0: the same anchor, the same one
parameter per curve, and no new term in the toy. What it changes is the tail: near completion
the error is B_k + O(sqrt(L)), the affine map's B_k + O(L), so a loss falling as e^-t gives an
error falling as e^-t/2. That is the misfit the affine map leaves on the faithful preset's CIWL
curves (a slow last approach to 0 the toy's sigmoid L2 overshoots). Measured on the default run
(6.4M sequences, `benchmarks/faithful_links.py`): see that table. The floors B_k enter
nonlinearly, so they are searched with the toy's parameters (as z_k, in Z_BOUNDS) instead of
projected out; the screen profiles them on a grid (Z_GRID, as it does tau) and each refinement
starts from their best on a finer one. A_k is then reported as the chord slope (0.5 - B_k) /
L_k,ref (not a parameter: the map is not affine).

Free parameters (any of them can be fixed by the caller, `fixed={"mu2": 0.0}`): the toy's alpha,
mu1, mu2; tau; the speed ratio `nd_ratio`; and the loss maps A1, B1, A2, B2 (B1, B2 only, when
anchored). The draw and lr are
fixed (lr only rescales tau while gradient descent stays close to gradient flow).

The speed ratio: `nd_ratio` = effective n_d / n_a (the paper's draw: 160 / 20 = 8)
-------------------------------------------------------------------------------------
With the mean aggregate, the dimensions enter the reduced dynamics (`toymodel.reduced`) only as
rates: in the normalised coordinates p_v, q_v / |v*| every loss value is O(1) whatever n_v, and the
update of vector v is proportional to 1 / n_v (e.g. (1/s_d) dL2/dp_d carries k2 s_b s_c ~ 1/n_d).
So a larger n_d makes mechanism 2 slower by exactly n_d / n_a relative to mechanism 1 (besides a
smaller initial overlap of d with its target). The fit moves that rate: d's gradient-descent step
is multiplied by rho = n_d / (n_a * nd_ratio), all else unchanged (rho = 1 at the draw's own
dims). This is exactly gradient descent on a draw whose d has dimension n_d,eff = n_a * nd_ratio
with the same normalised overlaps: s_d -> s_d / rho, k2, kc -> rho k2, rho kc, q_d -> q_d / sqrt(rho)
leave every loss value unchanged and multiply d's normalised velocity by rho (a test checks it).
The initial overlap of d stays the draw's (it sets how long d sits on its saddle).
Rejected alternatives: scaling k2 alone by r is not a speed ratio, since
(L1 + mu1)(r L2 + mu2) + alpha C = r [(L1 + mu1)(L2 + mu2/r) + (alpha/r) C]: it is lr -> r lr,
mu2 -> mu2 / r, alpha -> alpha / r and L2 -> r L2, i.e. (in the gradient-flow limit exactly) a
change of tau, mu2, alpha and A2, so it cannot be identified. An initial scale of d moves the
escape time only logarithmically and leaves the rates alone.

The objective, and what R^2 means
---------------------------------
Least squares on the losses as measured (not their logarithm): the goal is to reproduce the curves
that are plotted, R^2 is reported on them, and the affine maps then solve in closed form. A
log-loss fit would weigh the CIWL tail (0.005-0.02, mostly evaluation noise) as much as its whole
1.3 -> 0.005 descent and the maps would no longer be linear. Residuals are weighted per curve
(`weights="balanced"`, the default): curve k's residuals are divided by its standard deviation, so
the objective is n * sum_k (1 - R^2_k), both curves count equally although the ICL loss varies
more. `weights="none"` fits the raw residuals. R^2_k = 1 - SS_res / SS_tot over the fitted points
of curve k, unweighted (what the curve shows).

Variable projection: for a given trajectory the best (A_k, B_k) is ordinary linear least squares of
y_k on (L_k, 1); when its slope is negative, A_k = 0 and B_k = mean(y_k) (the toy then explains
nothing, R^2 = 0). The nonlinear search runs over (alpha, mu1, mu2, log tau, log nd_ratio) only:
1. screening: `starts` Latin-hypercube points of (alpha, mu1, mu2, nd_ratio) (plus the paper's
   point), each simulated for `max_steps` steps in one `jax.vmap`-ed call, recorded every
   `screen_every` steps; tau is profiled on a log grid of 64 values for each (cheap: the trajectory
   does not depend on tau);
2. refinement of the best `refine` starts with `scipy.optimize.least_squares` (trust-region
   reflective, bounds, central-difference Jacobian) on the every-step trajectory, interpolated
   exactly as above. A single lane runs as one fused XLA loop (~2 ms for 40,000 steps on one core),
   so finite differences are cheap: `jax.jacfwd` through the scan measured 130 ms (its tangents
   break the fusion), 6x the 10 simulations of a central-difference Jacobian.

Uncertainties
-------------
At the optimum, J = d(weighted residuals)/d(every free parameter in natural units, the free A, B
included, so their uncertainty is propagated; central differences with step 1e-5 relative for the
toy's parameters, one-sided on a bound), and the covariance is the heteroscedasticity-consistent
sandwich (HC2) (J^T J)^-1 J^T diag(r_i^2 / (1 - h_i)) J (J^T J)^-1, h_i the rows' leverages.
Why not sigma^2 (J^T J)^-1 (the estimator before): it assumes one noise level for every row of both
curves, but an evaluator's noise grows with the level of its curve and the two curves differ.
Measured over 30 noisy copies of toy-made curves (noise SD growing as the square root of the
curve, `tests/test_toy_fit.py::evaluation_like_noise`): within one standard error 0.74 of the
(copy, parameter) pairs with sigma^2 (J^T J)^-1 (A2's 0.37, B2's 1.00), 0.65 with HC2 (nominal
0.68), 0.83 with HC3; within two 0.97, 0.93 and 0.99 (nominal 0.95). HC2 is nearest nominal; it
still covers A2 less often (0.47) than nominal. With the probit link (20 noisy copies, sd 0.01,
`test_probit_standard_errors_cover_the_truth`): 0.64 within one, 0.86 within two: short in the
tails, where alpha, mu1, tau and nd_ratio move together 3-6 standard errors from the truth on 4
copies (each fit's cost below the truth's). All of these assume independent residuals: a
systematic misfit (the toy cannot follow a feature of the curve) makes them correlated, and the
standard errors are then too small. A parameter
is flagged poorly determined when it sits on a bound, its standard error exceeds half its value,
or it correlates beyond 0.95 in magnitude with another parameter.

The measured rows
-----------------
Rows with sequences < `from_sequences` are not fitted (they are kept for the plot). Default
(`from_sequences=None`): drop the rows at sequences 0, the untrained network (cross-entropy ~25
in runs/tf, from its large label-table init), which no affine image of the toy's start can match
together with the trained levels (~0.3-3) without giving up the rest of the curve. The mapping
itself is unchanged: s = 0 is still toy step 0.

What the toy cannot follow (found on runs/tf; details in the fit's residuals): once ICL has
faded, a -> 0 returns L1 exactly to L1_ref, which is also its level before ICL emerged, so no
affine map gives an ICL loss that ends above its early plateau (the transformer's does, ~2.5 vs
~1.65); and the regimes in which L2 dips early and bumps up while ICL emerges (as the CIWL loss
does) keep ICL for good, so the two curves pull the fit to different places.

Verdict: the toy at the fitted parameters is run for its own step count, ceil(s_max / tau) steps
(the data's span), and classified with `toymodel.outcomes` (L1 and L2 relative to their reference
values). Toy computations run in float64 (`toymodel.precision.float64`).
"""

from __future__ import annotations

import csv
import functools
import math
import time
from dataclasses import dataclass
from pathlib import Path
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

from .config import LINEAR, LINKS, LOG_PARAMS, LOSSES, NONLINEAR, PARAMS, WEIGHTS, FitConfig

__all__ = ["Curves", "load_curves", "affine_map", "link_map", "r_squared", "simulate_batch", "FitConfig", "FitResult", "bounds",
           "fit", "toy_on_sequences", "phase_grid", "PARAMS", "NONLINEAR", "LINEAR", "CURVES", "WEIGHTS", "MAPPING",
           "OUTCOMES"]

CURVES = ("icl", "ciwl")
COLUMNS = ("sequences", "icl_loss", "ciwl_loss")
MIN_ROWS = 8
# bounds of the search (natural units); tau's come from the data's span and the step budget
BOUNDS = {"alpha": (0.0, 20.0), "mu1": (0.0, 20.0), "mu2": (0.0, 5.0), "nd_ratio": (0.1, 1000.0)}
# the box the screening starts are drawn from (log-uniform; mu2 = 0 for a quarter of them)
START_BOX = {"alpha": (0.003, 3.0), "mu1": (0.003, 3.0), "mu2": (1e-5, 0.3), "nd_ratio": (0.25, 256.0)}
N_TAU = 64
Z_BOUNDS = (-6.0, -0.01)  # the probit link's z_k = Phi^-1(B_k): B_k from 1e-9 to 0.496
Z_GRID = np.linspace(-4.0, -0.1, 24)  # the screen's profile of z_k (B_k from 3e-5 to 0.46)
CHANCE_ERROR = 0.5  # an evaluator's error rate at chance (two labels in context)
MAPPING = (
    "icl_loss(s) ~ A1*L1(s/tau) + B1, ciwl_loss(s) ~ A2*L2(s/tau) + B2, A1, A2 >= 0; s = sequences seen, "
    "tau = sequences per toy GD step (lr 1), toy step 0 = the draw's initial vectors at s = 0, L linearly "
    "interpolated between steps; mechanism 2's vector d steps at rate rho = n_d / (n_a * nd_ratio) "
    "(nd_ratio = effective n_d / n_a)"
)

PROBIT_MAPPING = (
    "error_k(s) ~ Phi(Phi^-1(B_k) * (1 - sqrt(L_k(s/tau) / L_k_ref))), k = icl (L1), ciwl (L2); tau, the "
    "interpolation and rho as in the affine mapping"
)

# ---------------------------------------------------------------------------------------------
# measured curves
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Curves:
    """Measured curves: every row read (`sequences`, `icl`, `ciwl`; `icl_acc` the ICL evaluator's
    accuracy when the source has it, else None) and the rows fitted (`used`)."""

    sequences: np.ndarray
    icl: np.ndarray
    ciwl: np.ndarray
    used: np.ndarray  # bool mask of the fitted rows
    source: str
    from_sequences: float | None = None
    until: float | None = None  # rows after this are not fitted (held out for `compare.predict`)
    losses: str = "context"
    icl_acc: np.ndarray | None = None
    chance: float | None = None  # both curves' level at chance (0.5 for error rates): the maps' anchor

    @property
    def s(self) -> np.ndarray:
        return self.sequences[self.used]

    def y(self, curve: str) -> np.ndarray:
        return getattr(self, curve)[self.used]

    @property
    def held_out(self) -> np.ndarray:
        """bool mask of the rows after `until` (none without a cut)."""
        return np.zeros(self.sequences.shape, bool) if self.until is None else self.sequences > self.until


def _run_columns(run: Path, losses: str) -> tuple[list[str], Path]:
    """(the metrics.csv columns of the two curves, the file holding them) of a run directory. A run
    written before metrics.csv had in-context losses gets them by re-scoring its checkpoints
    (`transformer.analysis.context_losses`), cached once in `<run>/context_losses.csv`."""
    metrics = run / "metrics.csv"
    if losses == "full":
        return ["icl_loss", "ciwl_loss"], metrics
    if losses == "error":
        return ["icl_acc", "ciwl_acc"], metrics  # turned into 1 - accuracy by load_curves
    names = ["icl_ctx_loss", "ciwl_ctx_loss"]
    with open(metrics, newline="") as fh:
        reader = csv.DictReader(fh)
        header, rows = reader.fieldnames or [], list(reader)
    if all(n in header for n in names) and all(math.isfinite(float(r[n])) for r in rows for n in names):
        return names, metrics
    cache = run / "context_losses.csv"
    cached = 0
    if cache.is_file():
        with open(cache, newline="") as fh:
            cached = sum(1 for _ in csv.DictReader(fh))
    if cached != len(rows):
        from runio import write_csv
        from transformer.analysis import context_losses  # lazily: only for runs older than the columns

        by_step = {r["step"]: r for r in context_losses(run)}
        missing = [int(r["step"]) for r in rows if int(r["step"]) not in by_step]
        if missing:
            raise ValueError(f"{run}: no checkpoint at step(s) {missing[:3]} to re-score the in-context losses from")
        table = [by_step[int(r["step"])] for r in rows]
        write_csv(cache, {"sequences": [int(r["sequences"]) for r in rows], "icl_acc": [float(r["icl_acc"]) for r in rows],
                          **{n: [t[n] for t in table] for n in names}})
    return names, cache


def load_curves(path, from_sequences: float | None = None, until: float | None = None, losses: str = "error") -> Curves:
    """Curves from a run directory (its metrics.csv) or a CSV with columns sequences,icl_loss,ciwl_loss.

    From a run directory, `losses` picks the curves: "error" (the ICL and CIWL evaluators' error
    rates, 1 - in-context accuracy: the default, see the module docstring), "context" (their
    in-context losses) or "full" (their full cross-entropy).
    A CSV's icl_loss and ciwl_loss are fitted as given; an `icl_acc` column, if any, is read too.
    Rows with sequences < `from_sequences` are not fitted; None drops the rows at sequences 0 (the
    untrained network). Rows with sequences > `until` are not fitted either (held out, predicted by
    `compare.predict`). Raises ValueError with a one-line message for anything unusable.
    """
    if losses not in LOSSES:
        raise ValueError(f"losses must be one of {', '.join(LOSSES)}, got {losses!r}")
    path = Path(path)
    if path.is_dir():
        file = path / "metrics.csv"
        if not file.is_file():
            raise ValueError(f"{path} is a directory without metrics.csv (not a transformer run)")
        names, file = _run_columns(path, losses)
    elif path.is_file():
        file, names = path, ["icl_loss", "ciwl_loss"]
    else:
        raise ValueError(f"no such file or directory: {path}")
    columns = ["sequences"] + names
    try:
        with open(file, newline="") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in columns if c not in header]
            if missing:
                raise ValueError(f"{file} lacks column(s) {','.join(missing)} (needs {','.join(columns)})")
            reader.fieldnames = header
            rows = list(reader)
    except UnicodeDecodeError:
        raise ValueError(f"{file} is not a text CSV file") from None
    except csv.Error as err:
        raise ValueError(f"{file} is not a readable CSV file ({err})") from None
    if not rows:
        raise ValueError(f"{file} has no rows (an empty run)")
    values = np.empty((len(rows), 3))
    for i, row in enumerate(rows):
        for j, col in enumerate(columns):
            try:
                values[i, j] = float(row[col])
            except (TypeError, ValueError):
                raise ValueError(f"{file} row {i + 2}: {col} is not a number ({row[col]!r})") from None
    if not np.all(np.isfinite(values)):
        i, j = np.argwhere(~np.isfinite(values))[0]
        raise ValueError(f"{file} row {i + 2}: {columns[j]} is not finite ({values[i, j]})")
    anchored = path.is_dir() and losses == "error"  # error rates: 1 - accuracy, maps anchored at chance
    if anchored:
        values[:, 1:] = 1.0 - values[:, 1:]
    icl_acc = None
    if "icl_acc" in header:
        try:
            icl_acc = np.array([float(r["icl_acc"]) for r in rows])
        except (TypeError, ValueError):
            raise ValueError(f"{file}: icl_acc is not a number in every row") from None
    seq = values[:, 0]
    if np.any(seq < 0) or np.any(np.diff(seq) <= 0):
        raise ValueError(f"{file}: sequences must be >= 0 and strictly increasing")
    if from_sequences is not None and not (math.isfinite(from_sequences) and from_sequences >= 0):
        raise ValueError(f"from_sequences must be a finite number >= 0, got {from_sequences}")
    used = seq > 0 if from_sequences is None else seq >= from_sequences
    if until is not None:
        if not (math.isfinite(until) and seq[0] < until < seq[-1]):
            raise ValueError(f"fit_until must lie inside the run's rows ({seq[0]:,.0f} < fit_until < {seq[-1]:,.0f}), "
                             f"got {until:g}")
        used &= seq <= until
    if used.sum() < MIN_ROWS:
        raise ValueError(f"{file}: {int(used.sum())} row(s) to fit, at least {MIN_ROWS} needed")
    for j, col in ((1, names[0]), (2, names[1])):
        if np.ptp(values[used, j]) == 0:
            raise ValueError(f"{file}: {col} is constant over the fitted rows (nothing to fit)")
    return Curves(seq, values[:, 1], values[:, 2], used, str(file), from_sequences, until, losses if path.is_dir() else "as given",
                  icl_acc, CHANCE_ERROR if anchored else None)


# ---------------------------------------------------------------------------------------------
# affine maps and R^2
# ---------------------------------------------------------------------------------------------


def _affine(model, y, a_fixed=None, b_fixed=None, xp=jnp, anchor=None):
    """Least-squares (A, B) of y ~ A model + B along the last axis, A >= 0 (A = 0, B = mean y when
    the free slope is negative or the model constant); a given A or B is kept. With `anchor` =
    (level, ref), A = (level - B) / ref (the toy's reference loss maps to the chance level) and B,
    the curve's floor, is fitted in [0, level]. Works with numpy (xp=np) and inside jax
    (differentiable: safe divisions)."""
    if anchor is not None:
        level, ref = anchor
        u = model / ref
        if b_fixed is not None:
            b = xp.broadcast_to(b_fixed, model.shape[:-1])
        else:
            v = 1.0 - u
            svv = xp.sum(v * v, axis=-1)
            ok = svv > 0
            b = xp.where(ok, xp.sum((y - level * u) * v, axis=-1) / xp.where(ok, svv, 1.0), xp.mean(y, axis=-1))
            b = xp.clip(b, 0.0, level)
        return (level - b) / ref, b
    if a_fixed is not None and b_fixed is not None:
        return xp.broadcast_to(a_fixed, model.shape[:-1]), xp.broadcast_to(b_fixed, model.shape[:-1])
    if a_fixed is not None:
        a = xp.broadcast_to(a_fixed, model.shape[:-1])
        return a, xp.mean(y - a[..., None] * model, axis=-1)
    if b_fixed is not None:
        sxx = xp.sum(model * model, axis=-1)
        sxy = xp.sum(model * (y - b_fixed), axis=-1)
        ok = sxx > 0
        a = xp.where(ok, xp.maximum(sxy / xp.where(ok, sxx, 1.0), 0.0), 0.0)
        return a, xp.broadcast_to(b_fixed, a.shape)
    mm, ym = xp.mean(model, axis=-1), xp.mean(y, axis=-1)
    dm = model - mm[..., None]
    sxx = xp.sum(dm * dm, axis=-1)
    sxy = xp.sum(dm * (y - ym[..., None]), axis=-1)
    ok = sxx > 0
    a = xp.where(ok, xp.maximum(sxy / xp.where(ok, sxx, 1.0), 0.0), 0.0)
    return a, ym - a * mm


def affine_map(model, measured, a_fixed=None, b_fixed=None) -> tuple[float, float]:
    """(A, B) minimising sum (A model + B - measured)^2 with A >= 0 (numpy; see the module docstring)."""
    a, b = _affine(np.asarray(model, np.float64), np.asarray(measured, np.float64), a_fixed, b_fixed, xp=np)
    return float(a), float(b)


def link_map(link: str, loss, a: float, b: float, l_ref: float | None = None) -> np.ndarray:
    """A toy loss mapped to the measured curve: affine, a L + b; probit (error rates, anchored at
    chance), Phi(Phi^-1(b) (1 - sqrt(L / l_ref))) (the module docstring; `a` unused)."""
    from scipy.special import ndtr, ndtri

    loss = np.asarray(loss, np.float64)
    if link == "affine":
        return a * loss + b
    return ndtr(ndtri(b) * (1.0 - np.sqrt(np.maximum(loss, 0.0) / l_ref)))


def r_squared(measured, predicted) -> float:
    """1 - SS_res / SS_tot, SS_tot about the mean of `measured`."""
    y, f = np.asarray(measured, np.float64), np.asarray(predicted, np.float64)
    return float(1.0 - np.sum((y - f) ** 2) / np.sum((y - np.mean(y)) ** 2))


# ---------------------------------------------------------------------------------------------
# the toy simulation with a speed ratio (jitted, vmappable)
# ---------------------------------------------------------------------------------------------


class _Problem(NamedTuple):
    """One draw's compiled toy curves and reference losses (`_problem`)."""

    single: Callable  # (theta, steps, every) -> ((l1, l2) rows, l1 min, its step), one parameter set
    batch: Callable  # the same, vmapped over parameter sets (theta: 4 arrays (n,))
    l1_ref: float
    l2_ref: float
    rho_scale: float  # n_d / n_a of the draw: rho = rho_scale / nd_ratio


@functools.cache
def _problem(seed: int, dims: tuple, lr: float) -> _Problem:
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
    return _Problem(single, batch, float(l1_ref), float(l2_ref), rho_scale)


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
    prob = _problem(int(seed), tuple(int(d) for d in dims), float(lr))
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


# ---------------------------------------------------------------------------------------------
# the fit (how: `FitConfig`, in `compare.config` with the options of `coop compare`)
# ---------------------------------------------------------------------------------------------


def bounds(curves: Curves, config: FitConfig) -> dict:
    """Bounds of every nonlinear parameter in natural units (tau's from the data span and step budget)."""
    s_max = float(curves.s[-1])
    return {**BOUNDS, "tau": (s_max / config.max_steps, s_max / config.min_steps)}


@dataclass(kw_only=True)
class FitResult:
    """A fit: parameters (all, natural units) and their standard errors (None when fixed), R^2 per
    curve, fitted and measured values at the fitted rows, the toy's verdict, diagnostics."""

    params: dict  # every name in PARAMS -> value
    se: dict  # free parameter -> standard error
    free: list  # the free parameters, in the order of `correlation`
    at_bound: list
    poorly_determined: dict  # name -> reason
    correlation: np.ndarray  # (len(free), len(free))
    sigma2: float  # weighted SS_res / dof
    dof: int
    r2: dict  # curve -> R^2
    weights: dict  # curve -> residual weight
    curves: Curves
    fitted: dict  # curve -> fitted values at curves.s
    toy: dict  # verdict and trajectory summary
    trajectory: dict  # per toy step up to the own step count: l1, l2 (each (steps + 1,))
    starts: list  # per refined start: screen cost, cost, nfev, status, start and end parameters
    bounds: dict  # nonlinear parameter -> (lo, hi)
    config: FitConfig
    timing: dict

    def residuals(self) -> dict:
        return {c: self.curves.y(c) - self.fitted[c] for c in CURVES}

    def map(self, curve: str, loss) -> np.ndarray:
        """The toy's loss of `curve` ("icl": L1, "ciwl": L2) mapped as fitted (`link_map`)."""
        i = CURVES.index(curve) + 1
        return link_map(self.config.link, loss, self.params[f"A{i}"], self.params[f"B{i}"],
                        self.toy[f"l{i}_ref"])

    def to_dict(self) -> dict:
        res = self.residuals()
        c = self.curves
        return {
            "source": c.source,
            "mapping": MAPPING if self.config.link == "affine" else PROBIT_MAPPING,
            "data": {
                "rows_read": int(c.sequences.size), "rows_fitted": int(c.used.sum()),
                "losses": c.losses, "from_sequences": c.from_sequences, "fit_until": c.until,
                "rule": "rows with sequences < from_sequences not fitted (default: the rows at sequences 0, "
                        "the untrained network)",
                "dropped_sequences": c.sequences[~c.used & ~c.held_out].tolist(),
            },
            "config": self.config.to_dict(),
            "parameters": {
                k: {"value": self.params[k], "se": self.se.get(k), "fixed": k in self.config.fixed,
                    "at_bound": k in self.at_bound,
                    "bounds": list(self.bounds[k]) if k in self.bounds else
                    ([0.0, None] if k in ("A1", "A2") else [None, None])}
                for k in PARAMS
            },
            "derived": {"rho_d_rate": self.toy["rho"], "effective_n_d": self.params["nd_ratio"] * self.config.dims[0],
                        **({"maps": f"anchored at chance: A_k = ({c.chance} - B_k) / L_k_ref, L1_ref = "
                                    f"{self.toy['l1_ref']:.6g}, L2_ref = {self.toy['l2_ref']:.6g}"}
                           if c.chance is not None else {})},
            "uncertainty": {
                "method": "HC2 sandwich (J^T J)^-1 J^T diag(r_i^2 / (1 - h_i)) J (J^T J)^-1, J = d(weighted residuals)/"
                          "d(free parameters) at the optimum (central differences), h_i the leverages; sigma2 = weighted "
                          "SS_res / dof; assumes independent residuals, so systematic misfit makes these too small",
                "sigma2": self.sigma2, "dof": self.dof, "free": list(self.free),
                "correlation": self.correlation.tolist(),
                "poorly_determined": self.poorly_determined,
            },
            "r2": self.r2,
            "weights": self.weights,
            "residuals": {
                "sequences": c.s.tolist(),
                **{f"{k}_measured": c.y(k).tolist() for k in CURVES},
                **{f"{k}_fitted": self.fitted[k].tolist() for k in CURVES},
                **{f"{k}_residual": res[k].tolist() for k in CURVES},
            },
            "toy": self.toy,
            "starts": self.starts,
            "timing": self.timing,
        }


def _weights(curves: Curves, scheme: str) -> dict:
    return {k: (1.0 / float(np.std(curves.y(k))) if scheme == "balanced" else 1.0) for k in CURVES}


def _anchors(curves: Curves, config: FitConfig) -> dict:
    """curve -> (chance level, the toy's reference loss) when the curves have a chance level (error
    rates: the maps are anchored there, see the module docstring), else curve -> None."""
    if curves.chance is None:
        return {k: None for k in CURVES}
    prob = _problem(config.seed, tuple(config.dims), float(config.lr))
    return {"icl": (curves.chance, prob.l1_ref), "ciwl": (curves.chance, prob.l2_ref)}


def _screen(curves: Curves, config: FitConfig, bnds: dict, w: dict):
    """Latin-hypercube starts, simulated in one vmapped batch; tau profiled on a grid. Returns the
    starts sorted by cost: list of (cost, theta5 (natural, NONLINEAR order))."""
    from scipy.special import ndtr, ndtri
    from scipy.stats import qmc

    fixed = config.fixed
    anchors = _anchors(curves, config)
    free4 = [k for k in ("alpha", "mu1", "mu2", "nd_ratio") if k not in fixed]
    n = config.starts
    theta = np.empty((n, 4))
    u = qmc.LatinHypercube(d=max(1, len(free4)), seed=config.sample_seed).random(n) if free4 else np.zeros((n, 1))
    for j, name in enumerate(("alpha", "mu1", "mu2", "nd_ratio")):
        if name in fixed:
            theta[:, j] = fixed[name]
            continue
        lo, hi = START_BOX[name]
        x = u[:, free4.index(name)]
        if name == "mu2":  # a quarter at exactly 0 (the paper's setting), the rest log-uniform
            theta[:, j] = np.where(x < 0.25, 0.0, np.exp(np.log(lo) + (x - 0.25) / 0.75 * np.log(hi / lo)))
        else:
            theta[:, j] = np.exp(np.log(lo) + x * np.log(hi / lo))
    # the paper's point (alpha 0.1, mu1 0.1, mu2 0, nd_ratio 8) as the first start
    theta[0] = [fixed.get(k, v) for k, v in zip(("alpha", "mu1", "mu2", "nd_ratio"), (0.1, 0.1, 0.0, 8.0))]
    if not free4:
        theta = theta[:1]
    e = config.screen_every
    l1, l2, _, _ = simulate_batch(theta, config.max_steps, e, seed=config.seed, dims=config.dims, lr=config.lr)
    taus = np.array([fixed["tau"]]) if "tau" in fixed else np.geomspace(*bnds["tau"], N_TAU)
    s = curves.s
    t = np.minimum(s[None, :] / taus[:, None] / e, l1.shape[1] - 1)  # (n_tau, n) toy time in record units
    kk = np.clip(np.floor(t).astype(int), 0, l1.shape[1] - 2)
    f = t - kk
    cost = np.zeros((len(theta), len(taus)))
    with np.errstate(invalid="ignore", over="ignore"):  # diverged lanes: nan, costed as inf below
        for lo in range(0, len(theta), 256):  # blocks of lanes bound the (lanes, n_tau, n) temporaries
            for i, (k, rec) in enumerate((("icl", l1), ("ciwl", l2)), 1):
                part = rec[lo:lo + 256]
                model = part[:, kk] * (1 - f) + part[:, kk + 1] * f  # (lanes, n_tau, n)
                if config.link == "probit":  # the floor profiled on a grid of z = Phi^-1(B), like tau
                    u = 1.0 - np.sqrt(np.maximum(model, 0.0) / anchors[k][1])
                    zs = [float(ndtri(fixed[f"B{i}"]))] if f"B{i}" in fixed else Z_GRID
                    cost[lo:lo + 256] += w[k] ** 2 * np.min(
                        [np.sum((ndtr(z * u) - curves.y(k)) ** 2, axis=-1) for z in zs], axis=0)
                    continue
                a, b = _affine(model, curves.y(k), fixed.get(f"A{i}"), fixed.get(f"B{i}"), xp=np, anchor=anchors[k])
                r = a[..., None] * model + b[..., None] - curves.y(k)
                cost[lo:lo + 256] += w[k] ** 2 * np.sum(r * r, axis=-1)
    cost = np.where(np.isfinite(cost), cost, np.inf)
    best_tau = np.argmin(cost, axis=1)
    lane_cost = cost[np.arange(len(theta)), best_tau]
    order = np.argsort(lane_cost, kind="stable")
    out = []
    for i in order:
        a, m1, m2, nd = theta[i]
        out.append((float(lane_cost[i]), np.array([a, m1, m2, taus[best_tau[i]], nd])))
    return out


def _sandwich(jac: np.ndarray, resid: np.ndarray) -> np.ndarray:
    """Heteroscedasticity-consistent covariance (HC2) of a least-squares estimate: (J^T J)^-1 J^T
    diag(r_i^2 / (1 - h_i)) J (J^T J)^-1, h_i the leverages (the diagonal of J (J^T J)^-1 J^T).
    Unlike sigma^2 (J^T J)^-1 it does not assume one noise level for every row: evaluation noise
    grows with the level of a curve and differs between the curves (see the module docstring)."""
    bread = np.linalg.pinv(jac.T @ jac)
    lev = np.clip(np.einsum("ij,jk,ik->i", jac, bread, jac), 0.0, 1.0 - 1e-12)
    meat = (jac * (resid ** 2 / (1.0 - lev))[:, None]).T @ jac
    return bread @ meat @ bread


class _Objective:
    """Residuals of one fit: data, weights, fixed values and the free set held; the toy simulated for
    `max_steps` steps by the compiled single-lane kernel (about 2 ms for 40,000 steps)."""

    def __init__(self, curves: Curves, config: FitConfig, w: dict):
        prob = _problem(config.seed, tuple(config.dims), float(config.lr))
        self.free = [k for k in NONLINEAR if k not in config.fixed]
        self.anchors = _anchors(curves, config)
        # an anchored curve's A follows from its B (A = (chance - B) / L_ref): not a parameter of its own
        self.free_lin = [k for k in LINEAR if k not in config.fixed
                         and not (k[0] == "A" and self.anchors[CURVES[int(k[1]) - 1]] is not None)]
        self.fixed = dict(config.fixed)
        self.horizon = config.max_steps
        self.s = curves.s
        self.ys = {k: curves.y(k) for k in CURVES}
        self.w = w
        self.single = prob.single
        self.is_log = np.array([k in LOG_PARAMS for k in self.free], bool)
        self.base = np.array([self.fixed.get(k, 1.0) for k in NONLINEAR])
        self.free_idx = np.array([NONLINEAR.index(k) for k in self.free], int)
        self.link = config.link
        # the probit link's floors are searched (as z = Phi^-1(B)), not projected
        self.searched_b = [k for k in ("B1", "B2") if k not in self.fixed] if self.link == "probit" else []

    def natural(self, x) -> np.ndarray:
        """All five nonlinear parameters (natural units) from the search coordinates of the free ones."""
        theta = self.base.copy()
        theta[self.free_idx] = np.where(self.is_log, np.exp(x[:len(self.free)]), x[:len(self.free)])
        return theta

    def best_z(self, m: dict, curve: str) -> float:
        """The probit link's z = Phi^-1(B) of `curve` minimising its squared residuals at model points
        `m`, on a grid of 400 in Z_BOUNDS."""
        from scipy.special import ndtr

        u = 1.0 - np.sqrt(np.maximum(m[curve], 0.0) / self.anchors[curve][1])
        zs = np.linspace(*Z_BOUNDS, 400)
        cost = np.sum((ndtr(zs[:, None] * u[None]) - self.ys[curve][None]) ** 2, axis=1)
        return float(zs[int(np.nanargmin(cost))])

    def floors(self, x) -> dict:
        """The probit link's B1, B2 from the search coordinates (fixed ones as given)."""
        from scipy.special import ndtr

        z = dict(zip(self.searched_b, x[len(self.free):]))
        return {k: float(ndtr(z[k])) if k in z else self.fixed[k] for k in ("B1", "B2")}

    def to_x(self, theta5) -> np.ndarray:
        x = np.asarray(theta5, np.float64)[self.free_idx]
        return np.where(self.is_log, np.log(np.maximum(x, 1e-300)), x)

    def trajectory(self, theta5):
        """(l1, l2) at every step 0..max_steps."""
        (l1, l2), _, _ = self.single(tuple(jnp.asarray(theta5[i]) for i in (0, 1, 2, 4)), self.horizon, 1)
        return np.asarray(l1), np.asarray(l2)

    def model_points(self, theta5) -> dict:
        """L1, L2 at the fitted rows' toy times s / tau (linear interpolation between steps)."""
        l1, l2 = self.trajectory(theta5)
        t = np.minimum(self.s / theta5[3], self.horizon)
        k = np.clip(np.floor(t).astype(int), 0, self.horizon - 1)
        f = t - k
        return {"icl": l1[k] * (1 - f) + l1[k + 1] * f, "ciwl": l2[k] * (1 - f) + l2[k + 1] * f}

    def maps(self, m: dict, x=None) -> dict:
        """curve -> (A, B): affine, in closed form (variable projection); probit, B from the search
        coordinates `x` and A = (chance - B) / L_ref (the chord from (0, B) to (L_ref, chance))."""
        if self.link == "probit":
            b = self.floors(x)
            return {k: ((self.anchors[k][0] - b[f"B{i}"]) / self.anchors[k][1], b[f"B{i}"])
                    for i, k in enumerate(CURVES, 1)}
        return {k: tuple(float(v) for v in _affine(m[k], self.ys[k], self.fixed.get(f"A{i}"), self.fixed.get(f"B{i}"),
                                                   xp=np, anchor=self.anchors[k]))
                for i, k in enumerate(CURVES, 1)}

    def mapped(self, m: dict, ab: dict) -> dict:
        ref = {k: (self.anchors[k][1] if self.anchors[k] is not None else None) for k in CURVES}
        return {k: link_map(self.link, m[k], *ab[k], ref[k]) for k in CURVES}

    def vp_residual(self, x) -> np.ndarray:
        """Weighted residuals; the affine maps solved in closed form (variable projection)."""
        m = self.model_points(self.natural(x))
        f = self.mapped(m, self.maps(m, x))
        r = np.concatenate([self.w[k] * (f[k] - self.ys[k]) for k in CURVES])
        return np.where(np.isfinite(r), r, 1e3)

    def full_jacobian(self, theta5, params: dict, bnds: dict) -> np.ndarray:
        """d(weighted residuals)/d(free nonlinear (natural units), free A, B) at the optimum. The
        nonlinear columns by central differences (one-sided at a bound), step 1e-5 relative."""
        cols = []
        for name in self.free:
            j = NONLINEAR.index(name)
            h = 1e-5 * max(abs(theta5[j]), 1e-3)
            lo, hi = bnds[name]
            up, down = theta5.copy(), theta5.copy()
            up[j] = min(theta5[j] + h, hi)
            down[j] = max(theta5[j] - h, lo)
            ab = {k: (params[f"A{i}"], params[f"B{i}"]) for i, k in enumerate(CURVES, 1)}
            fu, fd = self.mapped(self.model_points(up), ab), self.mapped(self.model_points(down), ab)
            step = up[j] - down[j]
            cols.append(np.concatenate([self.w[k] * (fu[k] - fd[k]) / step for k in CURVES]))
        m = self.model_points(theta5)
        zeros = np.zeros_like(self.s)
        for name in self.free_lin:
            i = int(name[1])
            k = CURVES[i - 1]
            col = m[k] if name[0] == "A" else np.ones_like(self.s)
            if self.link == "probit":  # y = Phi(z u), u = 1 - sqrt(L / L_ref), z = Phi^-1(B): dy/dB = phi(z u) u / phi(z)
                from scipy.special import ndtri

                z = float(ndtri(params[name]))
                u = 1.0 - np.sqrt(np.maximum(m[k], 0.0) / self.anchors[k][1])
                col = np.exp(-0.5 * (z * u) ** 2 + 0.5 * z * z) * u
            elif self.anchors[k] is not None:  # y = B + (chance - B) L / L_ref: dy/dB = 1 - L / L_ref
                col = 1.0 - m[k] / self.anchors[k][1]
            parts = [self.w[c] * col if c == k else zeros for c in CURVES]
            cols.append(np.concatenate(parts))
        return np.column_stack(cols) if cols else np.zeros((2 * self.s.size, 0))


@float64
def fit(curves: Curves, config: FitConfig = FitConfig()) -> FitResult:
    """Fit the toy model to `curves` (see the module docstring); deterministic for a given config."""
    from scipy.optimize import least_squares

    t_start = time.perf_counter()
    prob = _problem(config.seed, tuple(config.dims), float(config.lr))
    bnds = bounds(curves, config)
    if curves.chance is not None and {"A1", "A2"} & set(config.fixed):
        raise ValueError("A1 and A2 follow from B1 and B2 on error-rate curves (anchored at chance): fix B1, B2 instead")
    if "tau" in config.fixed and not bnds["tau"][0] <= config.fixed["tau"] <= bnds["tau"][1]:
        raise ValueError(f"fixed tau={config.fixed['tau']:g} outside [{bnds['tau'][0]:g}, {bnds['tau'][1]:g}] "
                         f"(s_max / max_steps .. s_max / min_steps)")
    if config.link == "probit" and curves.chance is None:
        raise ValueError("the probit link maps to error rates: it needs a run's error-rate curves (losses 'error')")
    w = _weights(curves, config.weights)
    obj = _Objective(curves, config, w)

    t0 = time.perf_counter()
    screened = _screen(curves, config, bnds, w)
    t_screen = time.perf_counter() - t0

    n_b = len(obj.searched_b)
    lo = np.concatenate([obj.to_x(np.array([bnds[k][0] for k in NONLINEAR])), np.full(n_b, Z_BOUNDS[0])])
    hi = np.concatenate([obj.to_x(np.array([bnds[k][1] for k in NONLINEAR])), np.full(n_b, Z_BOUNDS[1])])
    t0 = time.perf_counter()
    starts = []
    best = None
    for cost0, theta5 in screened[:config.refine]:
        if not math.isfinite(cost0):
            continue
        x0 = obj.to_x(theta5)
        if n_b:  # the probit floors start from their best on a fine grid, given the start's trajectory
            m0 = obj.model_points(theta5)
            x0 = np.concatenate([x0, [obj.best_z(m0, CURVES[int(k[1]) - 1]) for k in obj.searched_b]])
        if obj.free or n_b:
            span = hi - lo
            x0 = np.clip(x0, lo + 1e-9 * span, hi - 1e-9 * span)
            sol = least_squares(obj.vp_residual, x0, jac="3-point", bounds=(lo, hi), method="trf", x_scale="jac",
                                max_nfev=config.max_nfev, xtol=1e-10, ftol=1e-12, gtol=1e-10)
            x, cost, nfev, status = sol.x, float(2 * sol.cost), int(sol.nfev), int(sol.status)
        else:
            x, nfev, status = x0, 0, 0
            cost = float(np.sum(obj.vp_residual(x) ** 2))
        theta = obj.natural(x)
        starts.append({"screen_cost": cost0, "cost": cost, "nfev": nfev, "status": status,
                       "start": dict(zip(NONLINEAR, map(float, theta5))),
                       "end": {**dict(zip(NONLINEAR, map(float, theta))), **({k: obj.floors(x)[k] for k in obj.searched_b})}})
        if best is None or cost < best[0]:
            best = (cost, x)
    t_refine = time.perf_counter() - t0
    if best is None:
        raise ValueError("every start diverged or gave non-finite losses")
    _, x_best = best
    theta = obj.natural(x_best)
    for j, k in enumerate(NONLINEAR):  # the search stays strictly inside its bounds: snap what is on one
        if k in obj.free:
            lo_k, hi_k = bnds[k]
            tol = 1e-9 * (theta[j] if k in LOG_PARAMS else hi_k - lo_k)
            theta[j] = lo_k if theta[j] - lo_k <= tol else hi_k if hi_k - theta[j] <= tol else theta[j]

    # fitted values, maps, R^2
    m = obj.model_points(theta)
    ab = obj.maps(m, x_best)
    params = dict(zip(NONLINEAR, map(float, theta)))
    for i, k in enumerate(CURVES, 1):
        params[f"A{i}"], params[f"B{i}"] = ab[k]
    fitted = obj.mapped(m, ab)
    r2 = {k: r_squared(curves.y(k), fitted[k]) for k in CURVES}

    # uncertainties: the HC2 sandwich over every free parameter (nonlinear + A, B), natural units
    free_all = obj.free + obj.free_lin
    jac = obj.full_jacobian(theta, params, bnds)
    resid = np.concatenate([w[k] * (fitted[k] - curves.y(k)) for k in CURVES])
    dof = int(resid.size - len(free_all))
    sigma2 = float(np.sum(resid ** 2) / dof) if dof > 0 else float("nan")
    if free_all:
        cov = _sandwich(jac, resid)
        se_free = np.sqrt(np.clip(np.diag(cov), 0, None))
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = cov / np.outer(se_free, se_free)
    else:
        se_free, corr = np.zeros(0), np.zeros((0, 0))
    se = {k: float(v) for k, v in zip(free_all, se_free)}
    at_bound = []
    for k in obj.free:
        lo_k, hi_k = bnds[k]
        v = params[k]
        tol = 1e-6 * (v if k in LOG_PARAMS else hi_k - lo_k)
        if v - lo_k <= tol or hi_k - v <= tol:
            at_bound.append(k)
    at_bound += [k for k in ("A1", "A2") if k in obj.free_lin and params[k] == 0.0]
    if obj.link == "probit":
        from scipy.special import ndtr

        at_bound += [k for k in obj.searched_b if min(abs(params[k] - ndtr(z)) for z in Z_BOUNDS) <= 1e-9 * params[k]]
    else:
        at_bound += [f"B{i}" for i, k in enumerate(CURVES, 1) if f"B{i}" in obj.free_lin and obj.anchors[k] is not None
                     and params[f"B{i}"] in (0.0, obj.anchors[k][0])]
    poor = {}
    for i, k in enumerate(free_all):
        reasons = []
        if k in at_bound:
            reasons.append("on a bound (its standard error is not meaningful)")
        if not np.isfinite(se[k]) or se[k] > 0.5 * abs(params[k]):
            reasons.append(f"se {se[k]:.3g} > half its value")
        partners = [j for j in range(len(free_all)) if j != i and abs(corr[i, j]) > 0.95]
        if partners:
            reasons.append("correlation > 0.95 with " + ", ".join(f"{free_all[j]} ({corr[i, j]:+.3f})" for j in partners))
        if reasons:
            poor[k] = "; ".join(reasons)

    # verdict: the toy at the fitted point for its own step count
    tau = params["tau"]
    own = int(min(math.ceil(float(curves.s[-1]) / tau), config.max_steps))  # the data's span in steps
    l1_all, l2_all = obj.trajectory(theta)
    l1_own, l2_own = l1_all[:own + 1], l2_all[:own + 1]
    finite = bool(np.all(np.isfinite(l1_own)) and np.all(np.isfinite(l2_own)))
    i_min = int(np.argmin(np.where(np.isfinite(l1_own), l1_own, np.inf)))
    l1_ref, l2_ref = prob.l1_ref, prob.l2_ref
    outcome = OUTCOMES[int(classify(l1_own[i_min], l1_own[-1], l2_own[-1], l1_ref, l2_ref))] if finite else "diverged"
    toy = {
        "steps": own, "outcome": outcome, "transient_icl": outcome == "transient_icl",
        "rule": f"toymodel.outcomes: relative loss r = L / L_ref, learned when r <= {LEARNED}; transient_icl = "
                "ICL (L1) learned at some step and not at the last step",
        "l1_min": float(l1_own[i_min]), "l1_min_step": i_min, "l1_min_sequences": i_min * tau,
        "l1_final": float(l1_own[-1]), "l2_final": float(l2_own[-1]), "l1_ref": l1_ref, "l2_ref": l2_ref,
        "r1_min": float(l1_own[i_min] / l1_ref), "r1_final": float(l1_own[-1] / l1_ref),
        "r2_final": float(l2_own[-1] / l2_ref),
        "rho": prob.rho_scale / params["nd_ratio"],
        "measured_icl_loss_min_sequences": float(curves.s[int(np.argmin(curves.y("icl")))]),
    }
    timing = {"screen_s": t_screen, "refine_s": t_refine, "total_s": time.perf_counter() - t_start}
    corr_out = np.where(np.isfinite(corr), corr, 0.0) if corr.size else corr
    return FitResult(params=params, se=se, free=free_all, at_bound=at_bound, poorly_determined=poor,
                     correlation=corr_out, sigma2=sigma2, dof=dof, r2=r2, weights=w, curves=curves, fitted=fitted,
                     toy=toy, trajectory={"l1": l1_own, "l2": l2_own}, starts=starts, bounds={**bnds}, config=config,
                     timing=timing)


def toy_on_sequences(result: FitResult) -> dict:
    """The mapped toy curves at every toy step up to the own step count: sequences, icl, ciwl."""
    p = result.params
    steps = np.arange(result.trajectory["l1"].size)
    return {"sequences": steps * p["tau"], "icl": result.map("icl", result.trajectory["l1"]),
            "ciwl": result.map("ciwl", result.trajectory["l2"])}


@float64
def phase_grid(result: FitResult, n: int = 40) -> dict:
    """Outcome classes over an (alpha, mu1) grid at the fitted mu2, nd_ratio, draw, and the fit's own
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
    prob = _problem(cfg.seed, tuple(cfg.dims), float(cfg.lr))
    codes = np.asarray(classify(lmin, l1[:, -1], l2[:, -1], prob.l1_ref, prob.l2_ref))
    return {"alpha": alphas, "mu1": mu1s, "outcome": codes.reshape(n, n), "mu2": p["mu2"],
            "nd_ratio": p["nd_ratio"], "steps": steps, "wall_time_s": time.perf_counter() - t0}
