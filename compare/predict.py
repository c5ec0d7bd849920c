"""Held-out prediction: the toy model fitted to a run's rows up to a cut predicts the rows after it.

`coop compare RUN --fit-until S` fits (`compare.fit.fit`) only the rows with sequences <= S, then
runs the toy at the fitted point on to the run's last row and maps it with the fitted A, B: the
prediction of every later row, which the fit never saw. Reported:
- R^2 of the prediction on the held-out rows, per curve (it can be negative: worse than their mean),
  and its mean absolute error there (in the curve's units: what R^2 cannot say about a held-out
  curve that hardly moves, such as a CIWL error already at 0);
- when ICL fades: the first sequences after the ICL peak at which ICL accuracy falls below
  `FADE_ACC` (0.6), measured and predicted. The toy predicts losses, not accuracies, so the
  threshold is carried over as a loss: the ICL loss at which the run's ICL accuracy crosses 0.6,
  read off the fitted rows (their (loss, accuracy) pairs, accuracy made non-increasing in the loss,
  interpolated). The predicted fade is the first step after the predicted loss minimum at which the
  predicted ICL loss rises above that level, within the run's span; None ("persistent") if it does
  not. Needs the run's ICL accuracy (a run directory, or a CSV with an icl_acc column).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .curves import CURVES, Curves
from .maps import r_squared
from .result import FitResult
from .toy import simulate_batch

__all__ = ["FADE_ACC", "Prediction", "predict", "fade_threshold", "measured_fade"]

FADE_ACC = 0.6


@dataclass(frozen=True)
class Prediction:
    """The toy's prediction of a run's held-out rows (see the module docstring)."""

    until: float  # the cut: rows with sequences <= until were fitted
    sequences: np.ndarray  # (R,) every row
    predicted: dict  # curve -> (R,) the mapped toy at every row
    held_out: np.ndarray  # (R,) bool
    r2_held_out: dict  # curve -> R^2 on the held-out rows
    mae_held_out: dict  # curve -> mean |measured - predicted| on the held-out rows
    toy: dict  # the mapped toy at every step to the run's end: sequences, icl, ciwl
    threshold_loss: float | None  # the ICL loss at which ICL accuracy crosses FADE_ACC (None: no accuracy)
    measured_fade: float | None  # sequences at which measured ICL accuracy falls below FADE_ACC after its peak
    predicted_fade: float | None

    @property
    def fade_error(self) -> float | None:
        """(predicted - measured) / measured fade sequences; None unless both faded."""
        if self.measured_fade is None or self.predicted_fade is None:
            return None
        return (self.predicted_fade - self.measured_fade) / self.measured_fade

    def to_dict(self) -> dict:
        return {
            "fit_until": self.until, "rows_held_out": int(self.held_out.sum()),
            "r2_held_out": self.r2_held_out, "mae_held_out": self.mae_held_out,
            "fade_rule": f"first sequences after the ICL peak with ICL accuracy < {FADE_ACC}; predicted: the toy's "
                         f"mapped ICL loss above the loss at which the fitted rows' accuracy crosses {FADE_ACC}",
            "threshold_loss": self.threshold_loss, "measured_fade_sequences": self.measured_fade,
            "predicted_fade_sequences": self.predicted_fade, "fade_relative_error": self.fade_error,
            "rows": {"sequences": self.sequences.tolist(), "held_out": self.held_out.tolist(),
                     **{f"{k}_predicted": self.predicted[k].tolist() for k in CURVES}},
        }


def fade_threshold(loss: np.ndarray, acc: np.ndarray, level: float = FADE_ACC) -> float | None:
    """The loss at which accuracy crosses `level`, from (loss, accuracy) pairs: sorted by loss,
    accuracy made non-increasing (its running minimum), then interpolated. None if the pairs do not
    span the level."""
    order = np.argsort(loss)
    x, y = np.asarray(loss)[order], np.minimum.accumulate(np.asarray(acc)[order])
    if not (y[-1] < level <= y[0]):
        return None
    i = int(np.argmax(y < level))  # first pair below the level; y[i - 1] >= level
    x0, x1, y0, y1 = x[i - 1], x[i], y[i - 1], y[i]
    return float(x0 if y0 == y1 else x0 + (level - y0) * (x1 - x0) / (y1 - y0))


def measured_fade(sequences: np.ndarray, acc: np.ndarray, level: float = FADE_ACC) -> float | None:
    """First sequences after the accuracy's peak at which it is below `level` (None: never)."""
    peak = int(np.argmax(acc))
    below = np.nonzero(acc[peak:] < level)[0]
    return float(sequences[peak + below[0]]) if below.size else None


def predict(result: FitResult, curves: Curves) -> Prediction:
    """The toy at `result`'s fitted point run to the end of `curves` (the same curves the fit was
    given, with a cut `curves.until`), mapped, compared with the held-out rows."""
    if curves.until is None:
        raise ValueError("predict needs curves with a cut (load_curves(..., until=...))")
    p, cfg = result.params, result.config
    tau = p["tau"]
    end = int(math.ceil(float(curves.sequences[-1]) / tau))  # the run's end in toy steps
    theta = np.array([[p["alpha"], p["mu1"], p["mu2"], p["nd_ratio"]]])
    # simulated at least to the fit's horizon: a population's fast classes run past the data's span
    l1, l2, _, _ = simulate_batch(theta, max(end, cfg.max_steps), 1, seed=cfg.seed, dims=cfg.dims, lr=cfg.lr)
    grid = np.arange(end + 1) * tau
    toy = {"sequences": grid, "icl": result.curve("icl", grid, l1[0]), "ciwl": result.curve("ciwl", grid, l2[0], l1[0])}
    predicted = {k: result.curve(k, curves.sequences, traj, l1[0]) for k, traj in zip(CURVES, (l1[0], l2[0]))}
    held = curves.held_out
    r2 = {k: r_squared(getattr(curves, k)[held], predicted[k][held]) for k in CURVES}
    mae = {k: float(np.mean(np.abs(getattr(curves, k)[held] - predicted[k][held]))) for k in CURVES}
    threshold = measured = fade = None
    if curves.icl_acc is not None:
        measured = measured_fade(curves.sequences, curves.icl_acc)
        threshold = fade_threshold(curves.y("icl"), curves.icl_acc[curves.used])
        if threshold is not None:
            lowest = int(np.argmin(toy["icl"]))
            above = np.nonzero(toy["icl"][lowest:] > threshold)[0]
            fade = float(grid[lowest + above[0]]) if above.size else None
    return Prediction(until=float(curves.until), sequences=curves.sequences, predicted=predicted, held_out=held,
                      r2_held_out=r2, mae_held_out=mae, toy=toy, threshold_loss=threshold, measured_fade=measured, predicted_fade=fade)
