"""The toy model against a transformer run: the toy's L1, L2 fitted to the run's ICL and CIWL
evaluator losses (`compare.fit`), its report and figures (`compare.report`, `compare.plots`).

Above both models: it imports `toymodel` and reads a transformer run's metrics.csv itself (it
does not import `transformer`); neither model imports it.
"""

from . import fit
from .fit import (CURVES, PARAMS, WEIGHTS, Curves, FitConfig, FitResult, bounds, load_curves, phase_grid,
                  simulate_batch, toy_on_sequences)
from .report import fit_report, write_report

# `compare.fit` is the module (the fit itself is `compare.fit.fit`)
__all__ = ["fit", "CURVES", "PARAMS", "WEIGHTS", "Curves", "FitConfig", "FitResult", "bounds", "load_curves",
           "phase_grid", "simulate_batch", "toy_on_sequences", "fit_report", "write_report"]
