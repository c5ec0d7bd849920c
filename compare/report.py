"""What `coop compare` writes: fit.json (the fit, its phase diagram, timings) and the two figures."""

from __future__ import annotations

import time
from pathlib import Path

from runio import write_json

from .fit import OUTCOMES, FitResult, toy_on_sequences
from .plots import plot_fit

__all__ = ["fit_report", "write_report"]


def fit_report(result: FitResult, phase: dict, started: float, prediction=None) -> dict:
    """fit.json's content: `FitResult.to_dict()` with the phase diagram (`compare.fit.phase_grid`)
    and the phase and command times (`started`: the command's `time.perf_counter()` at its start)."""
    info = result.to_dict()
    info["phase_diagram"] = {"alpha": phase["alpha"], "mu1": phase["mu1"], "outcome": phase["outcome"],
                             "outcomes": list(OUTCOMES), "mu2": phase["mu2"], "nd_ratio": phase["nd_ratio"],
                             "steps": phase["steps"], "wall_time_s": phase["wall_time_s"]}
    if prediction is not None:
        info["prediction"] = prediction.to_dict()
    info["timing"]["phase_s"] = phase["wall_time_s"]
    info["timing"]["command_s"] = time.perf_counter() - started
    return info


def write_report(result: FitResult, phase: dict, out, started: float, prediction=None) -> dict:
    """Write out/fit.json, out/overlay.png and out/phase.png (`compare.plots.plot_fit`; with a
    `compare.predict.Prediction`, fit.json's "prediction" and the held-out part in the overlay);
    returns fit.json's content."""
    out = Path(out)
    info = fit_report(result, phase, started, prediction)
    write_json(out / "fit.json", info)
    plot_fit(result, toy_on_sequences(result), phase, out / "overlay.png", out / "phase.png", prediction)
    return info
